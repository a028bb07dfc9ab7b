// Package consoletest is the conformance suite of console.Records: every
// adapter (console.MemoryRecords, fsconsole) passes Run.
package consoletest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/console"
	"github.com/autonomics/autonomics/shared/deadletter"
	"github.com/autonomics/autonomics/shared/fault"
)

// Epoch is the time the suite's records start at.
var Epoch = time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)

// Factory returns an empty Records keeping what limits allows.
type Factory func(t *testing.T, limits console.RecordLimits) console.Records

// DeadLetter returns a dead letter with id received at Epoch plus i
// seconds.
func DeadLetter(id string, i int) console.DeadLetter {
	return console.DeadLetter{
		ID: id, ReceivedAt: Epoch.Add(time.Duration(i) * time.Second), PublishTime: Epoch,
		Reason: "bad data", Code: "invalid", Domain: "billing", Type: "autonomics.billing.invoice_issued",
		Tenant: "acme", Subject: "inv-1", Source: "//test", EventID: "e-" + id,
		Attributes: map[string]string{"ce-id": "e-" + id, deadletter.AttrReason: "bad data"},
		Data:       []byte(`{"amount":1}`), Replayable: true,
	}
}

func code(t *testing.T, call string, err error, want fault.Code) {
	t.Helper()
	if got := fault.ErrorCode(err); err == nil || got != want {
		t.Fatalf("%s = %v, want a %s error", call, err, want)
	}
}

func ids(ds []console.DeadLetter) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// Run runs the suite against the Records newRecords returns.
func Run(t *testing.T, newRecords Factory) {
	ctx := context.Background()
	t.Run("PutAndGetDeadLetter", func(t *testing.T) {
		r := newRecords(t, console.RecordLimits{})
		d := DeadLetter("m-1", 0)
		created, err := r.PutDeadLetter(ctx, d)
		if err != nil || !created {
			t.Fatalf("PutDeadLetter = %v, %v; want created", created, err)
		}
		got, err := r.DeadLetter(ctx, "m-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != d.ID || !got.ReceivedAt.Equal(d.ReceivedAt) || !got.PublishTime.Equal(d.PublishTime) ||
			got.Reason != d.Reason || got.Code != d.Code || got.Domain != d.Domain || got.Type != d.Type ||
			got.Tenant != d.Tenant || got.Subject != d.Subject || got.Source != d.Source || got.EventID != d.EventID ||
			string(got.Data) != string(d.Data) || got.Attributes["ce-id"] != "e-m-1" || len(got.Attributes) != 2 ||
			!got.Replayable || got.Replay != nil {
			t.Errorf("DeadLetter = %+v, want %+v", got, d)
		}
	})
	t.Run("PutDeadLetterTwiceChangesNothing", func(t *testing.T) {
		r := newRecords(t, console.RecordLimits{})
		if _, err := r.PutDeadLetter(ctx, DeadLetter("m-1", 0)); err != nil {
			t.Fatal(err)
		}
		again := DeadLetter("m-1", 5)
		again.Reason = "other"
		created, err := r.PutDeadLetter(ctx, again)
		if err != nil || created {
			t.Fatalf("second PutDeadLetter = %v, %v; want not created, nil", created, err)
		}
		got, _ := r.DeadLetter(ctx, "m-1")
		if got.Reason != "bad data" || !got.ReceivedAt.Equal(Epoch) {
			t.Errorf("the second put changed the record: %+v", got)
		}
	})
	t.Run("MissingDeadLetterIsNotFound", func(t *testing.T) {
		r := newRecords(t, console.RecordLimits{})
		_, err := r.DeadLetter(ctx, "nope")
		code(t, "DeadLetter(nope)", err, fault.NotFound)
		code(t, "MarkReplayed(nope)", r.MarkReplayed(ctx, "nope", console.Replay{By: "a", At: Epoch}), fault.NotFound)
	})
	t.Run("BadIDIsInvalid", func(t *testing.T) {
		r := newRecords(t, console.RecordLimits{})
		for _, id := range []string{"", "a/b", "..", "__x__"} {
			_, err := r.PutDeadLetter(ctx, DeadLetter(id, 0))
			code(t, fmt.Sprintf("PutDeadLetter(%q)", id), err, fault.Invalid)
		}
	})
	t.Run("DeadLettersNewestFirstInPages", func(t *testing.T) {
		r := newRecords(t, console.RecordLimits{})
		// m-3 and m-4 share an instant: ties go by id, descending.
		for i, id := range []string{"m-0", "m-1", "m-2", "m-3", "m-4"} {
			at := i
			if id == "m-4" {
				at = 3
			}
			if _, err := r.PutDeadLetter(ctx, DeadLetter(id, at)); err != nil {
				t.Fatal(err)
			}
		}
		var all []string
		q := console.DeadLetterQuery{Limit: 2}
		for range 5 {
			page, err := r.DeadLetters(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, ids(page)...)
			if len(page) < q.Limit {
				break
			}
			q.After = page[len(page)-1].Cursor()
		}
		want := []string{"m-4", "m-3", "m-2", "m-1", "m-0"}
		if fmt.Sprint(all) != fmt.Sprint(want) {
			t.Errorf("pages = %v, want %v", all, want)
		}
	})
	t.Run("MarkReplayed", func(t *testing.T) {
		r := newRecords(t, console.RecordLimits{})
		if _, err := r.PutDeadLetter(ctx, DeadLetter("m-1", 0)); err != nil {
			t.Fatal(err)
		}
		rp := console.Replay{By: "alice@example.com", At: Epoch.Add(time.Minute), MessageID: "77"}
		if err := r.MarkReplayed(ctx, "m-1", rp); err != nil {
			t.Fatal(err)
		}
		got, _ := r.DeadLetter(ctx, "m-1")
		if got.Replay == nil || got.Replay.By != rp.By || !got.Replay.At.Equal(rp.At) || got.Replay.MessageID != "77" {
			t.Errorf("Replay = %+v, want %+v", got.Replay, rp)
		}
		page, _ := r.DeadLetters(ctx, console.DeadLetterQuery{Limit: 10})
		if len(page) != 1 || page[0].Replay == nil {
			t.Errorf("listing does not show the replay: %+v", page)
		}
	})
	t.Run("PruneDropsOldAndExcessDeadLetters", func(t *testing.T) {
		r := newRecords(t, console.RecordLimits{Retention: time.Hour, MaxDeadLetters: 3})
		for i := range 6 {
			if _, err := r.PutDeadLetter(ctx, DeadLetter(fmt.Sprintf("m-%d", i), i*60)); err != nil {
				t.Fatal(err)
			}
		}
		// m-i is received i minutes after Epoch. At 60m30s m-0 is older
		// than the hour; the count keeps the 3 newest.
		if err := r.Prune(ctx, Epoch.Add(60*time.Minute+30*time.Second)); err != nil {
			t.Fatal(err)
		}
		page, err := r.DeadLetters(ctx, console.DeadLetterQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(ids(page)); got != "[m-5 m-4 m-3]" {
			t.Errorf("after Prune: %s, want [m-5 m-4 m-3]", got)
		}
		if err := r.Prune(ctx, Epoch.Add(63*time.Minute+30*time.Second)); err != nil {
			t.Fatal(err)
		}
		page, _ = r.DeadLetters(ctx, console.DeadLetterQuery{Limit: 10})
		if got := fmt.Sprint(ids(page)); got != "[m-5 m-4]" {
			t.Errorf("after a later Prune: %s, want [m-5 m-4] (m-3 past retention)", got)
		}
	})
	t.Run("CheckpointsDistinctLargestFirst", func(t *testing.T) {
		r := newRecords(t, console.RecordLimits{})
		for _, c := range []console.CheckpointRecord{
			{Size: 1, Root: "AAA=", Time: Epoch, SeenAt: Epoch},
			{Size: 3, Root: "CCC=", Time: Epoch.Add(2 * time.Second), SeenAt: Epoch},
			{Size: 2, Root: "BBB=", Time: Epoch.Add(time.Second), SeenAt: Epoch},
		} {
			if created, err := r.PutCheckpoint(ctx, c); err != nil || !created {
				t.Fatalf("PutCheckpoint(%+v) = %v, %v", c, created, err)
			}
		}
		created, err := r.PutCheckpoint(ctx, console.CheckpointRecord{Size: 2, Root: "BBB=", Time: Epoch, SeenAt: Epoch.Add(time.Hour)})
		if err != nil || created {
			t.Fatalf("PutCheckpoint of a recorded checkpoint = %v, %v; want not created", created, err)
		}
		got, err := r.Checkpoints(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Size != 3 || got[0].Root != "CCC=" || got[1].Size != 2 || !got[1].Time.Equal(Epoch.Add(time.Second)) {
			t.Errorf("Checkpoints(2) = %+v, want sizes 3 then 2", got)
		}
	})
	t.Run("BadCheckpointIsInvalid", func(t *testing.T) {
		r := newRecords(t, console.RecordLimits{})
		_, err := r.PutCheckpoint(ctx, console.CheckpointRecord{Size: -1, Root: "AAA="})
		code(t, "PutCheckpoint(size -1)", err, fault.Invalid)
		_, err = r.PutCheckpoint(ctx, console.CheckpointRecord{Size: 1})
		code(t, "PutCheckpoint(no root)", err, fault.Invalid)
	})
	t.Run("PruneKeepsTheLargestCheckpoints", func(t *testing.T) {
		r := newRecords(t, console.RecordLimits{MaxCheckpoints: 2})
		for i := range 4 {
			if _, err := r.PutCheckpoint(ctx, console.CheckpointRecord{Size: int64(i + 1), Root: fmt.Sprintf("R%d=", i), Time: Epoch, SeenAt: Epoch}); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Prune(ctx, Epoch); err != nil {
			t.Fatal(err)
		}
		got, _ := r.Checkpoints(ctx, 10)
		if len(got) != 2 || got[0].Size != 4 || got[1].Size != 3 {
			t.Errorf("after Prune: %+v, want sizes 4 and 3", got)
		}
	})
	t.Run("BadLimitIsInvalid", func(t *testing.T) {
		r := newRecords(t, console.RecordLimits{})
		_, err := r.DeadLetters(ctx, console.DeadLetterQuery{})
		code(t, "DeadLetters(limit 0)", err, fault.Invalid)
		_, err = r.Checkpoints(ctx, 0)
		code(t, "Checkpoints(0)", err, fault.Invalid)
	})
}
