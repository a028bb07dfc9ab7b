package testclock

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	fs "cloud.google.com/go/firestore"

	"github.com/autonomics/autonomics/shared/engine"
	"github.com/autonomics/autonomics/shared/firestore"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/topic"
)

// TestAdvanceOnFirestore fires timers armed on the way through the
// Firestore adapter on the emulator: MoveTimer, the timeout's receipt and
// the timers its decision arms.
func TestAdvanceOnFirestore(t *testing.T) {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" {
		t.Skip("FIRESTORE_EMULATOR_HOST not set")
	}
	ctx := context.Background()
	fc, err := fs.NewClientWithDatabase(ctx, project, fmt.Sprintf("testclock-%x", rand.Uint32()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fc.Close() })
	st := firestore.New(fc, firestore.Options{})
	names := topic.Names{Prefix: "tc-"}
	pub := &feeder{names: names}
	var subs []string
	for _, d := range governor.Domains {
		subs = append(subs, topic.SubscriptionName(project, topic.Push(names.Internal(d))))
	}
	now := func() time.Time { return start }
	eng, err := engine.New(engine.Options{
		Store: st, Publisher: pub, Machines: machines.New(nil), Topics: names, InternalSubscriptions: subs,
		Clock: now, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), TestClock: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	pub.eng = eng
	s := &stack{pub: pub, eng: eng, names: names}
	s.send(t, "t1", governor.Subscription, "created", "sub-1", `{"plan":"gold","trial_days":1}`)
	tc, err := New(Options{Enabled: true, Store: st, Publisher: pub, Topics: names, Now: now, Wait: Wait{Every: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	fired, err := tc.Advance(ctx, "t1", start.Add(35*day))
	if err != nil || len(fired) != 2 || fired[0].Timer != "trial_end" || fired[1].Timer != "period_end" {
		t.Fatalf("Advance = %+v, %v; want trial_end then period_end", fired, err)
	}
	for _, f := range fired {
		rs, err := st.ReceiptsByExecution(ctx, f.TimerID)
		if err != nil || len(rs) != 1 || rs[0].EventSource != engine.TestClockSource || rs[0].Outcome != string(governor.Accepted) {
			t.Errorf("receipts of %s = %+v, %v; want one accepted from %s", f.Timer, rs, err, engine.TestClockSource)
		}
	}
	insts, err := st.Instances(ctx, "t1", governor.Subscription)
	if err != nil || len(insts) != 1 || insts[0].State != "active" || insts[0].Timers["period_end"].ID == fired[1].TimerID {
		t.Errorf("subscription = %+v, %v; want active with a new period_end", insts, err)
	}
}
