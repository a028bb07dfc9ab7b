package platform

import (
	"context"
	"io"
	"testing"

	"github.com/autonomics/autonomics/shared/fault"
)

func TestGovernorsNeedsAStoreAndAPublisher(t *testing.T) {
	for _, c := range []*Clients{nil, {}, {Config: Config{ProjectID: "p"}}} {
		eng, err := Governors(c)
		if eng != nil || fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("Governors(%+v) = %v, %v; want no engine and an invalid error", c, eng, err)
		}
	}
}

// TestLazyConnectsOnceAndRetriesAFailure points the clients at emulator
// addresses nothing listens on: building clients and the engine sends no
// request, so that the test needs no emulator.
func TestLazyConnectsOnceAndRetriesAFailure(t *testing.T) {
	t.Setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:1")
	t.Setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:1")
	env := map[string]string{EnvLedgerDatabase: "ledger"}
	l := NewLazy(func(k string) string { return env[k] }, "test", io.Discard)
	ctx := context.Background()

	if eng, c, err := l.Governors(ctx); eng != nil || c != nil || fault.ErrorCode(err) != fault.Invalid {
		t.Fatalf("Governors without a project = %v, %v, %v; want an invalid error", eng, c, err)
	}
	env[EnvProject] = "p"
	eng, c, err := l.Governors(ctx)
	if err != nil || eng == nil || c == nil {
		t.Fatalf("Governors after the project is set = %v, %v, %v; want the engine and its clients", eng, c, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if c.Store == nil || c.Publisher == nil || c.Telemetry == nil {
		t.Errorf("clients = %+v, want a store, a publisher and telemetry", c)
	}
	if c.Firestore == nil || c.LedgerFirestore == c.Firestore || c.MonitorFirestore != c.Firestore {
		t.Errorf("Firestore clients: governors %p, ledger %p, monitor %p; want the ledger's apart and the monitor's shared",
			c.Firestore, c.LedgerFirestore, c.MonitorFirestore)
	}
	again, c2, err := l.Governors(ctx)
	if err != nil || again != eng || c2 != c {
		t.Errorf("second Governors = %p, %p, %v; want the first engine %p and clients %p", again, c2, err, eng, c)
	}
}
