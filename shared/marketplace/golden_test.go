package marketplace_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/autonomics/autonomics/shared/marketplace"
)

var update = flag.Bool("update", false, "rewrite docs/notifications.md from the mapping table")

// TestGolden keeps docs/notifications.md equal to the mapping table.
// Regenerate with go test ./shared/marketplace -run TestGolden -update.
func TestGolden(t *testing.T) {
	path := filepath.Join("docs", "notifications.md")
	got := marketplace.RenderNotifications()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is out of date: run go test ./shared/marketplace -run TestGolden -update", path)
	}
}

// TestEveryRuleHasAReasonWhenIgnored checks the table itself: every
// state of every rule either maps to events or says why not.
func TestEveryRuleHasAReasonWhenIgnored(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range marketplace.Rules() {
		if seen[r.Type] {
			t.Errorf("%s has two rules", r.Type)
		}
		seen[r.Type] = true
		for _, s := range marketplace.StatesOf(r.Resource) {
			if evs, why := r.Events(s); len(evs) == 0 && why == "" {
				t.Errorf("%s in %s: no events and no reason", r.Type, s)
			}
		}
	}
}
