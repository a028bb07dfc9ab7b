package fsusage_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	fs "cloud.google.com/go/firestore"

	"github.com/autonomics/autonomics/shared/marketplace/usage"
	"github.com/autonomics/autonomics/shared/marketplace/usage/fsusage"
	"github.com/autonomics/autonomics/shared/marketplace/usage/usagetest"
)

// emulatorProject is the project of the emulator tests.
const emulatorProject = "demo-autonomics"

// client returns a client of the Firestore emulator, or skips the test
// when FIRESTORE_EMULATOR_HOST is not set.
func client(t *testing.T) *fs.Client {
	t.Helper()
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		t.Skip("FIRESTORE_EMULATOR_HOST is not set: the Firestore adapter's tests need the emulator (make emulators)")
	}
	c, err := fs.NewClientWithDatabase(context.Background(), emulatorProject, "monitor-usage-test")
	if err != nil {
		t.Fatalf("firestore client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// namespace returns a namespace of its own for each store.
func namespace() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t-" + hex.EncodeToString(b[:])
}

func TestConformance(t *testing.T) {
	c := client(t)
	usagetest.Run(t, func(t *testing.T) usage.WindowStore {
		s, err := fsusage.New(c, fsusage.Options{Namespace: namespace(), MaxAttempts: 50})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestNewRefusesABadNamespace(t *testing.T) {
	c := client(t)
	for _, ns := range []string{"a/b", "__x__", ".."} {
		if _, err := fsusage.New(c, fsusage.Options{Namespace: ns}); err == nil {
			t.Errorf("New accepted the namespace %q", ns)
		}
	}
}
