package fswebhook_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	fs "cloud.google.com/go/firestore"

	"github.com/autonomics/autonomics/shared/webhook"
	"github.com/autonomics/autonomics/shared/webhook/fswebhook"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
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
	c, err := fs.NewClientWithDatabase(context.Background(), emulatorProject, "actuator-test")
	if err != nil {
		t.Fatalf("firestore client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// namespace returns a namespace of its own for each store.
func namespace(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t-" + hex.EncodeToString(b[:])
}

func TestConformance(t *testing.T) {
	c := client(t)
	webhooktest.Run(t, func(t *testing.T) webhook.Store {
		s, err := fswebhook.New(c, fswebhook.Options{Namespace: namespace(t), MaxAttempts: 200})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestNewRefusesABadNamespace(t *testing.T) {
	c := client(t)
	if _, err := fswebhook.New(c, fswebhook.Options{Namespace: "a/b"}); err == nil {
		t.Error("New accepted the namespace \"a/b\"")
	}
}
