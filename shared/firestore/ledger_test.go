package firestore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	fs "cloud.google.com/go/firestore"

	"github.com/autonomics/autonomics/shared/ledger/ledgertest"
)

// ledgerEmulatorProject is the emulator project of this test process's
// ledgers. It is new for every process: the emulator answers a query by
// scanning its whole database, so a database that keeps the documents of
// earlier runs makes every run slower than the last.
var ledgerEmulatorProject = fmt.Sprintf("ledger-test-%08x", rand.Uint32())

// ledgerClient returns a client of the Firestore emulator, or skips the
// test when FIRESTORE_EMULATOR_HOST is not set.
func ledgerClient(tb testing.TB) *fs.Client {
	tb.Helper()
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		tb.Skip("FIRESTORE_EMULATOR_HOST is not set; start the emulator (make emulators) and export FIRESTORE_EMULATOR_HOST=127.0.0.1:8780 to run the Firestore ledger tests")
	}
	c, err := fs.NewClient(context.Background(), ledgerEmulatorProject)
	if err != nil {
		tb.Fatalf("firestore.NewClient(%q) = %v", ledgerEmulatorProject, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// newTestLedger returns a Ledger of its own name on the emulator.
func newTestLedger(c *fs.Client) *Ledger {
	return NewLedger(c, LedgerOptions{Name: fmt.Sprintf("test-%016x", rand.Uint64())})
}

func TestLedgerConformance(t *testing.T) {
	c := ledgerClient(t)
	ledgertest.RunConformanceTests(t, func(t *testing.T) ledgertest.Harness {
		l := newTestLedger(c)
		return ledgertest.Harness{Store: l, SetTile: l.SetTile, SetLeaf: l.SetLeaf}
	})
}
