package fsmarketplace_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	fs "cloud.google.com/go/firestore"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/marketplace/accountstest"
	"github.com/autonomics/autonomics/shared/marketplace/fsmarketplace"
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
	c, err := fs.NewClientWithDatabase(context.Background(), emulatorProject, "marketplace-test")
	if err != nil {
		t.Fatalf("firestore client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// namespace returns a namespace of its own for each Accounts.
func namespace() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t-" + hex.EncodeToString(b[:])
}

func TestConformance(t *testing.T) {
	c := client(t)
	accountstest.Run(t, func() marketplace.Accounts {
		a, err := fsmarketplace.New(c, fsmarketplace.Options{Namespace: namespace(), MaxAttempts: 200})
		if err != nil {
			t.Fatal(err)
		}
		return a
	})
}

func TestNewRefusesABadNamespace(t *testing.T) {
	for _, ns := range []string{"a/b", "UPPER", "-lead", "__x__"} {
		if _, err := fsmarketplace.New(nil, fsmarketplace.Options{Namespace: ns}); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("New(namespace %q) = %v, want invalid", ns, err)
		}
	}
}

func TestPing(t *testing.T) {
	a, err := fsmarketplace.New(client(t), fsmarketplace.Options{Namespace: namespace()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Ping(context.Background()); err != nil {
		t.Errorf("Ping = %v", err)
	}
}
