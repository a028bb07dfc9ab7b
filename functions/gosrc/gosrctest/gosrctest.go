// Package gosrctest writes module trees for the tests of the code that
// reads Go sources (functions/gosrc and its users).
package gosrctest

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteTree writes files (slash-separated paths relative to the root, to
// their contents) under a fresh temporary directory and returns it.
func WriteTree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}
