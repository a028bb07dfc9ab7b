package fsconsole_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	fs "cloud.google.com/go/firestore"

	"github.com/autonomics/autonomics/shared/console"
	"github.com/autonomics/autonomics/shared/console/consoletest"
	"github.com/autonomics/autonomics/shared/console/fsconsole"
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
	c, err := fs.NewClientWithDatabase(context.Background(), emulatorProject, "console-test")
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
	consoletest.Run(t, func(t *testing.T, l console.RecordLimits) console.Records {
		s, err := fsconsole.New(c, fsconsole.Options{Namespace: namespace(), Limits: l})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestNewRefusesABadNamespace(t *testing.T) {
	c := client(t)
	if _, err := fsconsole.New(c, fsconsole.Options{Namespace: "a/b"}); err == nil {
		t.Error("New accepted the namespace \"a/b\"")
	}
}
