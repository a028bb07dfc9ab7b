package usage_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/marketplace/usage"
	"github.com/autonomics/autonomics/shared/marketplace/usage/scstandin"
)

const metricName = "example/api_calls"

// TestWindowArithmetic starts from a cursor and checks the one window a
// run reports.
func TestWindowArithmetic(t *testing.T) {
	tests := []struct {
		name      string
		end       time.Time // cursor end
		base      int64     // cursor usage
		usage     int64     // current usage
		now       time.Time
		want      bool
		wantStart time.Time
		wantEnd   time.Time
		wantValue int64
		wantLate  bool
	}{
		{name: "window closed an hour ago", end: at(12, 0), base: 10, usage: 25, now: at(13, 5), want: true, wantStart: at(12, 0), wantEnd: at(13, 0), wantValue: 15},
		{name: "exactly on the boundary", end: at(12, 0), base: 10, usage: 25, now: at(13, 0), want: true, wantStart: at(12, 0), wantEnd: at(13, 0), wantValue: 15},
		{name: "current hour not closed", end: at(13, 0), base: 10, usage: 25, now: at(13, 59), want: false},
		{name: "no usage is a zero window", end: at(12, 0), base: 10, usage: 10, now: at(13, 10), want: true, wantStart: at(12, 0), wantEnd: at(13, 0), wantValue: 0},
		{name: "usage went down: period reset", end: at(12, 0), base: 900, usage: 40, now: at(13, 10), want: true, wantStart: at(12, 0), wantEnd: at(13, 0), wantValue: 40},
		{name: "three hours missed: one late window", end: at(9, 0), base: 0, usage: 300, now: at(12, 20), want: true, wantStart: at(9, 0), wantEnd: at(12, 0), wantValue: 300, wantLate: true},
		{name: "cursor in the future (clock skew)", end: at(15, 0), base: 0, usage: 300, now: at(13, 20), want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			tenant := h.customer("acct-1", "ent-1", "api_calls")
			h.usage(tenant, "api_calls", tc.usage)
			if err := h.store.PutCursor(context.Background(), usage.Cursor{Entitlement: "ent-1", Metric: "api_calls", Tenant: tenant, End: tc.end, Usage: tc.base, Version: 1}); err != nil {
				t.Fatal(err)
			}
			rep := h.mustRun(tc.now)
			ops := h.reported("ent-1", metricName)
			if !tc.want {
				if len(ops) != 0 {
					t.Fatalf("reported %+v; want nothing", ops)
				}
				return
			}
			if len(ops) != 1 {
				t.Fatalf("reported %d operations; want 1", len(ops))
			}
			op := ops[0]
			if !op.Start.Equal(tc.wantStart) || !op.End.Equal(tc.wantEnd) || op.Metrics[metricName] != tc.wantValue {
				t.Errorf("window [%s, %s) = %d; want [%s, %s) = %d", op.Start, op.End, op.Metrics[metricName], tc.wantStart, tc.wantEnd, tc.wantValue)
			}
			if want := usage.OperationID("ent-1", "api_calls", tc.wantStart); op.OperationID != want {
				t.Errorf("operationId %s; want the UUIDv5 %s", op.OperationID, want)
			}
			if (rep.Late == 1) != tc.wantLate {
				t.Errorf("late = %d; want late %v", rep.Late, tc.wantLate)
			}
			c, _, _ := h.store.Cursor(context.Background(), "ent-1", "api_calls")
			if !c.End.Equal(tc.wantEnd) || c.Usage != tc.usage || len(c.Pending) != 0 {
				t.Errorf("cursor after the run: end %s usage %d pending %d; want %s, %d, 0", c.End, c.Usage, len(c.Pending), tc.wantEnd, tc.usage)
			}
		})
	}
}

func TestOperationIDIsAVersion5UUIDOfEntitlementMetricAndStart(t *testing.T) {
	a := usage.OperationID("ent-1", "api_calls", at(12, 0))
	if a != usage.OperationID("ent-1", "api_calls", at(12, 0).In(time.FixedZone("x", 3600))) {
		t.Error("the operation id depends on the time zone")
	}
	for _, other := range []string{
		usage.OperationID("ent-2", "api_calls", at(12, 0)),
		usage.OperationID("ent-1", "storage", at(12, 0)),
		usage.OperationID("ent-1", "api_calls", at(13, 0)),
	} {
		if other == a {
			t.Errorf("two windows share the operation id %s", a)
		}
	}
	if len(a) != 36 || a[14] != '5' {
		t.Errorf("operation id %s is not a version 5 UUID", a)
	}
}

func TestFirstRunOpensAtTheHourAndReportsNothing(t *testing.T) {
	h := newHarness(t, nil)
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.usage(tenant, "api_calls", 70)
	rep := h.mustRun(at(12, 30))
	if rep.Reported != 0 || len(h.sc.Calls()) != 0 {
		t.Fatalf("first sight reported %d operations in %d calls; want none", rep.Reported, len(h.sc.Calls()))
	}
	c, ok, _ := h.store.Cursor(context.Background(), "ent-1", "api_calls")
	if !ok || !c.End.Equal(at(12, 0)) || c.Usage != 0 {
		t.Fatalf("cursor after first sight = %+v, %v; want end 12:00 usage 0", c, ok)
	}
	h.usage(tenant, "api_calls", 100)
	h.mustRun(at(13, 2))
	ops := h.reported("ent-1", metricName)
	if len(ops) != 1 || !ops[0].Start.Equal(at(12, 0)) || !ops[0].End.Equal(at(13, 0)) || ops[0].Metrics[metricName] != 100 {
		t.Fatalf("second run reported %+v; want [12:00, 13:00) = 100", ops)
	}
}

func TestContiguousWindowsAcrossRuns(t *testing.T) {
	h := newHarness(t, nil)
	tenant := h.customer("acct-1", "ent-1", "api_calls", "storage")
	h.mustRun(at(12, 10))
	steps := []struct {
		at      time.Time
		calls   int64
		storage int64
	}{
		{at(13, 3), 10, 1}, {at(13, 40), 15, 2}, {at(14, 1), 30, 2}, {at(16, 7), 31, 9}, {at(17, 0), 50, 9},
	}
	for _, s := range steps {
		h.usage(tenant, "api_calls", s.calls)
		h.usage(tenant, "storage", s.storage)
		h.mustRun(s.at)
	}
	for _, m := range []struct {
		name  string
		total int64
	}{{metricName, 50}, {"example/storage", 9}} {
		ops := h.reported("ent-1", m.name)
		next := at(12, 0)
		var sum int64
		for _, op := range ops {
			if !op.Start.Equal(next) {
				t.Errorf("%s: window starts at %s; want %s (contiguous)", m.name, op.Start, next)
			}
			next = op.End
			sum += op.Metrics[m.name]
			if op.Sent != 1 {
				t.Errorf("%s: operation %s sent %d times", m.name, op.OperationID, op.Sent)
			}
		}
		if !next.Equal(at(17, 0)) || sum != m.total {
			t.Errorf("%s: windows end at %s summing %d; want 17:00 and %d", m.name, next, sum, m.total)
		}
	}
}

func TestPeriodResetReportsTheNewPeriodsUsage(t *testing.T) {
	h := newHarness(t, nil)
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 800)
	h.mustRun(at(13, 1))
	h.usage(tenant, "api_calls", 25) // the period was reset, then 25 more
	h.mustRun(at(14, 1))
	h.usage(tenant, "api_calls", 40)
	h.mustRun(at(15, 1))
	var got []int64
	for _, op := range h.reported("ent-1", metricName) {
		got = append(got, op.Metrics[metricName])
	}
	if len(got) != 3 || got[0] != 800 || got[1] != 25 || got[2] != 15 {
		t.Errorf("values %v; want [800 25 15]", got)
	}
}

// TestCrashBetweenReportAndRecording fails the write that marks a
// reported window done: the next run resends the same operation, which
// Service Control counts once, and then goes on.
func TestCrashBetweenReportAndRecording(t *testing.T) {
	h := newHarness(t, nil)
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 60)
	h.store.FailPuts(func(c usage.Cursor) bool { return len(c.Pending) == 0 && c.Version > 1 })
	if _, err := h.run(at(13, 5)); fault.ErrorCode(err) != fault.Unavailable {
		t.Fatalf("run with the done write failing = %v; want Unavailable", err)
	}
	first := h.reported("ent-1", metricName)
	if len(first) != 1 {
		t.Fatalf("reported %d operations before the crash; want 1", len(first))
	}
	h.store.FailPuts(nil)
	h.usage(tenant, "api_calls", 75) // more usage since: not in the resent window
	rep := h.mustRun(at(13, 20))
	if rep.Resent != 1 {
		t.Errorf("resent %d; want 1", rep.Resent)
	}
	ops := h.reported("ent-1", metricName)
	if len(ops) != 1 || ops[0].OperationID != first[0].OperationID || ops[0].Sent != 2 || ops[0].Metrics[metricName] != 60 {
		t.Fatalf("after the resend: %+v; want the one operation %s, value 60, sent twice", ops, first[0].OperationID)
	}
	h.mustRun(at(14, 5))
	ops = h.reported("ent-1", metricName)
	if len(ops) != 2 || !ops[1].Start.Equal(at(13, 0)) || ops[1].Metrics[metricName] != 15 {
		t.Fatalf("next window %+v; want [13:00, 14:00) = 15", ops)
	}
}

// TestCrashBeforeReportKeepsTheIntent fails the report after the intent
// was written: nothing is lost, and the window goes out next run.
func TestCrashBeforeReportKeepsTheIntent(t *testing.T) {
	h := newHarness(t, func(o *usage.Options) { o.Attempts = 1 })
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 60)
	h.sc.FailNext(scstandin.MethodReport, http.StatusServiceUnavailable, 1)
	if _, err := h.run(at(13, 5)); fault.ErrorCode(err) != fault.Unavailable {
		t.Fatalf("run with the report failing = %v; want Unavailable", err)
	}
	c, _, _ := h.store.Cursor(context.Background(), "ent-1", "api_calls")
	if len(c.Pending) != 1 || c.Pending[0].Value != 60 {
		t.Fatalf("pending after the failed report: %+v; want the 60 window", c.Pending)
	}
	h.mustRun(at(14, 5))
	ops := h.reported("ent-1", metricName)
	if len(ops) != 2 || ops[0].Metrics[metricName] != 60 || !ops[1].Start.Equal(at(13, 0)) || ops[1].Metrics[metricName] != 0 {
		t.Fatalf("reported %+v; want [12,13)=60 then [13,14)=0", ops)
	}
}

func TestServiceControl503ThenSuccess(t *testing.T) {
	for _, method := range []string{scstandin.MethodCheck, scstandin.MethodReport} {
		t.Run(method, func(t *testing.T) {
			h := newHarness(t, nil)
			tenant := h.customer("acct-1", "ent-1", "api_calls")
			h.mustRun(at(12, 10))
			h.usage(tenant, "api_calls", 5)
			h.sc.FailNext(method, http.StatusServiceUnavailable, 2)
			rep := h.mustRun(at(13, 5))
			if rep.Reported != 1 || len(h.reported("ent-1", metricName)) != 1 {
				t.Fatalf("reported %d (%d at the stand-in); want 1 after the retries", rep.Reported, len(h.reported("ent-1", metricName)))
			}
		})
	}
}

func TestServiceControlDownLeavesEverythingForTheNextRun(t *testing.T) {
	h := newHarness(t, func(o *usage.Options) { o.Attempts = 2 })
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 5)
	h.sc.FailNext("", http.StatusInternalServerError, 2)
	rep, err := h.run(at(13, 5))
	if fault.ErrorCode(err) != fault.Unavailable || rep.Failed != 1 || rep.Reported != 0 {
		t.Fatalf("run with Service Control down = %+v, %v; want 1 failed, Unavailable", rep, err)
	}
	h.mustRun(at(13, 30))
	if ops := h.reported("ent-1", metricName); len(ops) != 1 || ops[0].Metrics[metricName] != 5 {
		t.Fatalf("after recovery: %+v; want the window of 5", ops)
	}
}

func TestPermanentRefusalIsNotRetried(t *testing.T) {
	h := newHarness(t, func(o *usage.Options) { o.Attempts = 5 })
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 5)
	h.sc.FailNext(scstandin.MethodCheck, http.StatusForbidden, 1)
	rep, err := h.run(at(13, 5))
	if err == nil || rep.Failed != 1 {
		t.Fatalf("run with a 403 check = %+v, %v; want a failure", rep, err)
	}
	if n := len(h.sc.Calls()); n != 1 {
		t.Errorf("%d calls after a 403; want 1 (no retry of a permanent refusal)", n)
	}
}

// TestCheckErrorPublishesUsageBlockedAndReportsNothing blocks the
// consumer at Service Control.
func TestCheckErrorPublishesUsageBlockedAndReportsNothing(t *testing.T) {
	for _, code := range []string{"SERVICE_NOT_ACTIVATED", "BILLING_DISABLED", "CLIENT_APP_BLOCKED"} {
		t.Run(code, func(t *testing.T) {
			h := newHarness(t, nil)
			tenant := h.customer("acct-1", "ent-1", "api_calls", "storage")
			h.mustRun(at(12, 10))
			h.usage(tenant, "api_calls", 5)
			h.sc.BlockConsumer(consumer("ent-1"), code)
			rep := h.mustRun(at(13, 5))
			if rep.CheckFailed != 2 || rep.Blocked != 1 || rep.Reported != 0 {
				t.Fatalf("report %+v; want 2 check_failed, 1 blocked, nothing reported", rep)
			}
			if n := len(h.sc.Reports()); n != 0 {
				t.Fatalf("%d operations reported for a blocked consumer", n)
			}
			evs := h.events()
			if len(evs) != 1 {
				t.Fatalf("%d events; want 1 usage_blocked", len(evs))
			}
			ev := evs[0]
			var d struct{ Reason string }
			_ = json.Unmarshal(ev.Data, &d)
			if ev.Type != "autonomics.entitlement.usage_blocked" || ev.Source != "autonomics/actuator/usage" ||
				ev.Tenant != tenant || ev.Subject != "ent-1" || ev.ID != usage.EventID("ent-1", at(12, 0), usage.EventBlocked) || !strings.HasPrefix(d.Reason, code) {
				t.Errorf("event %+v reason %q; want usage_blocked of ent-1 from %s with reason %s…", ev, d.Reason, usage.Source, code)
			}
			// Still blocked an hour later: no second event, still nothing reported.
			h.gov.put(tenant, governor.Entitlement, "ent-1", "suspended", `{"plan":"metered","usage_reporting_id":"`+consumer("ent-1")+`"}`)
			h.usage(tenant, "api_calls", 9)
			rep = h.mustRun(at(14, 5))
			if len(h.events()) != 1 || len(h.sc.Reports()) != 0 || rep.Blocked != 0 {
				t.Errorf("still blocked: %d events, %d reports, report %+v; want 1, 0, no new block", len(h.events()), len(h.sc.Reports()), rep)
			}
			c, _, _ := h.store.Cursor(context.Background(), "ent-1", "api_calls")
			if len(c.Pending) != 1 {
				t.Errorf("a blocked cursor holds %d windows; want the one it was checked with", len(c.Pending))
			}
		})
	}
}

func TestUsageRestoredWhenTheCheckPassesAgain(t *testing.T) {
	h := newHarness(t, nil)
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 5)
	h.sc.BlockConsumer(consumer("ent-1"), "BILLING_DISABLED")
	h.mustRun(at(13, 5))
	h.gov.put(tenant, governor.Entitlement, "ent-1", "suspended", `{"plan":"metered","usage_reporting_id":"`+consumer("ent-1")+`"}`)
	h.usage(tenant, "api_calls", 8)
	h.sc.Unblock(consumer("ent-1"))
	rep := h.mustRun(at(15, 5))
	if rep.Restored != 1 || rep.Reported != 1 {
		t.Fatalf("report %+v; want 1 restored and the held window reported", rep)
	}
	evs := h.events()
	if len(evs) != 2 || evs[1].Type != "autonomics.entitlement.usage_restored" || evs[1].ID != usage.EventID("ent-1", at(12, 0), usage.EventRestored) {
		t.Fatalf("events %+v; want usage_blocked then usage_restored", evs)
	}
	if _, blocked, _ := h.store.Block(context.Background(), "ent-1"); blocked {
		t.Error("the block survived the restore")
	}
	h.gov.put(tenant, governor.Entitlement, "ent-1", "active", `{"plan":"metered","usage_reporting_id":"`+consumer("ent-1")+`"}`)
	h.mustRun(at(16, 5))
	ops := h.reported("ent-1", metricName)
	if len(ops) != 2 || ops[0].Metrics[metricName] != 5 || !ops[1].Start.Equal(at(13, 0)) || !ops[1].End.Equal(at(16, 0)) || ops[1].Metrics[metricName] != 3 {
		t.Fatalf("reported %+v; want [12,13)=5 then [13,16)=3", ops)
	}
	if len(h.events()) != 2 {
		t.Errorf("%d events after the restore; want no more", len(h.events()))
	}
}

func TestBlockedEventIsRepublishedWhenPublishingFailed(t *testing.T) {
	h := newHarness(t, nil)
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 5)
	h.sc.BlockConsumer(consumer("ent-1"), "BILLING_DISABLED")
	h.pub.Fail(true)
	if _, err := h.run(at(13, 5)); fault.ErrorCode(err) != fault.Unavailable {
		t.Fatalf("run with publishing down = %v; want Unavailable", err)
	}
	if _, blocked, _ := h.store.Block(context.Background(), "ent-1"); blocked {
		t.Fatal("a block was recorded though usage_blocked was not published")
	}
	h.pub.Fail(false)
	h.mustRun(at(13, 20))
	if evs := h.events(); len(evs) != 1 || evs[0].ID != usage.EventID("ent-1", at(12, 0), usage.EventBlocked) {
		t.Fatalf("events %+v; want usage_blocked once published", evs)
	}
}

// TestFailedBlockRecordStillRestores loses the Block record after
// usage_blocked went out: the governor's "blocked":"usage" stands for it,
// so the block is sent again under the same id while the check fails, and
// usage_restored goes out once it passes.
func TestFailedBlockRecordStillRestores(t *testing.T) {
	h := newHarness(t, nil)
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 5)
	h.sc.BlockConsumer(consumer("ent-1"), "BILLING_DISABLED")
	h.store.FailBlocks(true)
	if _, err := h.run(at(13, 5)); fault.ErrorCode(err) != fault.Unavailable {
		t.Fatalf("run with block writes down = %v; want Unavailable", err)
	}
	if _, recorded, _ := h.store.Block(context.Background(), "ent-1"); recorded {
		t.Fatal("a block was recorded though its write failed")
	}
	// The governor took usage_blocked.
	blockedData := `{"plan":"metered","usage_reporting_id":"` + consumer("ent-1") + `","blocked":"usage","blocked_reason":"BILLING_DISABLED"}`
	h.gov.put(tenant, governor.Entitlement, "ent-1", "suspended", blockedData)
	h.store.FailBlocks(false)
	// Still refused: usage_blocked again, same id, and now recorded.
	rep := h.mustRun(at(14, 5))
	if rep.Blocked != 1 || len(h.sc.Reports()) != 0 {
		t.Fatalf("report %+v, %d reports; want usage_blocked re-sent and nothing reported", rep, len(h.sc.Reports()))
	}
	evs := h.events()
	want := usage.EventID("ent-1", at(12, 0), usage.EventBlocked)
	if len(evs) != 2 || evs[0].ID != want || evs[1].ID != want {
		t.Fatalf("events %+v; want usage_blocked twice under id %s", evs, want)
	}
	if _, recorded, _ := h.store.Block(context.Background(), "ent-1"); !recorded {
		t.Fatal("the re-sent block was not recorded")
	}
	// Lose the record again, then the check passes: usage_restored.
	if err := h.store.DeleteBlock(context.Background(), "ent-1"); err != nil {
		t.Fatal(err)
	}
	h.sc.Unblock(consumer("ent-1"))
	h.usage(tenant, "api_calls", 8)
	rep = h.mustRun(at(15, 5))
	if rep.Restored != 1 || rep.Reported != 1 {
		t.Fatalf("report %+v; want 1 restored and the held window reported", rep)
	}
	evs = h.events()
	if last := evs[len(evs)-1]; last.Name != usage.EventRestored || last.ID != usage.EventID("ent-1", at(12, 0), usage.EventRestored) {
		t.Fatalf("last event %+v; want usage_restored", last)
	}
	// Active again: windows open and report as before.
	h.gov.put(tenant, governor.Entitlement, "ent-1", "active", `{"plan":"metered","usage_reporting_id":"`+consumer("ent-1")+`"}`)
	h.mustRun(at(16, 5))
	if ops := h.reported("ent-1", metricName); len(ops) != 2 || ops[1].Metrics[metricName] != 3 {
		t.Fatalf("reported %+v; want the held window then [13,16)=3", ops)
	}
}

func TestSuspendedWithoutAUsageBlockIsNotReported(t *testing.T) {
	h := newHarness(t, nil)
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.gov.put(tenant, governor.Entitlement, "ent-1", "suspended", `{"plan":"metered","usage_reporting_id":"`+consumer("ent-1")+`"}`)
	h.usage(tenant, "api_calls", 5)
	h.mustRun(at(13, 5))
	if len(h.sc.Calls()) != 0 || len(h.events()) != 0 {
		t.Errorf("%d calls, %d events for an entitlement suspended for another reason; want none", len(h.sc.Calls()), len(h.events()))
	}
}

func TestOnlyUsageReportingMarketplaceEntitlementsAreReported(t *testing.T) {
	h := newHarness(t, nil)
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.gov.put(tenant, governor.Entitlement, "ent-flat", "active", `{"plan":"flat"}`)
	h.gov.put(tenant, governor.Entitlement, "ent-gone", "cancelled", `{"plan":"metered","usage_reporting_id":"project_number:9"}`)
	h.gov.put(tenant, governor.Entitlement, "ent-new", "activation_requested", `{"plan":"metered","usage_reporting_id":"project_number:8"}`)
	h.gov.put(tenant, governor.Entitlement, "ent-junk", "active", `not json`)
	h.gov.put(tenant, governor.QuotaSLA, "sla", "meeting", `{"availability_bp":9990}`)
	// A direct-sold tenant (no link) with a usage reporting id.
	h.gov.put("direct", governor.Entitlement, "ent-d", "active", `{"plan":"metered","usage_reporting_id":"project_number:7"}`)
	h.gov.put("direct", governor.QuotaSLA, "api_calls", "within_limits", `{"usage":5}`)
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 5)
	h.mustRun(at(13, 5))
	ops := h.sc.Reports()
	if len(ops) != 1 || ops[0].ConsumerID != consumer("ent-1") {
		t.Fatalf("reported %+v; want only ent-1's window", ops)
	}
}

// TestRequestSizeCapSplitsReports gives one entitlement many metrics and
// a small request cap: the operations go out in several requests, none
// over the cap, all counted.
func TestRequestSizeCapSplitsReports(t *testing.T) {
	const limit = 4 << 10
	h := newHarness(t, func(o *usage.Options) { o.MaxRequestBytes = limit })
	var metrics []string
	for i := range 60 {
		metrics = append(metrics, "metric_"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	tenant := h.customer("acct-1", "ent-1", metrics...)
	h.mustRun(at(12, 10))
	for i, m := range metrics {
		h.usage(tenant, m, int64(i+1))
	}
	rep := h.mustRun(at(13, 5))
	if rep.Reported != len(metrics) || len(h.sc.Reports()) != len(metrics) {
		t.Fatalf("reported %d (%d at the stand-in); want %d", rep.Reported, len(h.sc.Reports()), len(metrics))
	}
	reports := 0
	for _, c := range h.sc.Calls() {
		if c.Method != scstandin.MethodReport {
			continue
		}
		reports++
		if c.Bytes > limit || c.Status != http.StatusOK {
			t.Errorf("report request of %d bytes answered %d; want ≤ %d bytes, 200", c.Bytes, c.Status, limit)
		}
	}
	if reports < 2 || reports != rep.Requests {
		t.Errorf("%d report requests (report says %d); want several", reports, rep.Requests)
	}
}

func TestDefaultCapKeepsRequestsUnderOneMegabyte(t *testing.T) {
	h := newHarness(t, nil)
	var metrics []string
	for i := range 12 {
		metrics = append(metrics, "metric_"+string(rune('a'+i)))
	}
	for i := range 400 {
		h.customer("acct-"+string(rune('a'+i%26))+strings.Repeat("z", i/26), "ent-"+strings.Repeat("q", i/26)+string(rune('a'+i%26)), metrics...)
	}
	h.mustRun(at(12, 10))
	rep := h.mustRun(at(13, 5))
	if rep.Reported != 4800 || len(h.sc.Reports()) != 4800 {
		t.Fatalf("reported %d (%d at the stand-in); want 4800", rep.Reported, len(h.sc.Reports()))
	}
	for _, c := range h.sc.Calls() {
		if c.Method == scstandin.MethodReport && (c.Bytes > scstandin.MaxRequestBytes || c.Status != http.StatusOK) {
			t.Errorf("report request of %d bytes answered %d", c.Bytes, c.Status)
		}
	}
	if rep.Requests < 2 {
		t.Errorf("%d report requests for 4800 operations; want them split", rep.Requests)
	}
}

func TestInvalidConsumerHoldsBackOnlyItself(t *testing.T) {
	h := newHarness(t, func(o *usage.Options) { o.Attempts = 1 })
	t1 := h.customer("acct-1", "ent-1", "api_calls")
	t2 := h.customer("acct-2", "ent-2", "api_calls")
	h.gov.put(t2, governor.Entitlement, "ent-2", "active", `{"plan":"metered","usage_reporting_id":"not a consumer"}`)
	h.mustRun(at(12, 10))
	h.usage(t1, "api_calls", 3)
	h.usage(t2, "api_calls", 4)
	rep, err := h.run(at(13, 5))
	if err == nil || rep.Failed != 1 || rep.Reported != 1 {
		t.Fatalf("run = %+v, %v; want ent-1 reported and ent-2 failed", rep, err)
	}
	if ops := h.sc.Reports(); len(ops) != 1 || ops[0].ConsumerID != consumer("ent-1") {
		t.Errorf("reported %+v; want ent-1 only", ops)
	}
}

func TestConcurrentReportersReportEachWindowOnce(t *testing.T) {
	h := newHarness(t, nil)
	for i := range 20 {
		h.customer("acct-"+string(rune('a'+i)), "ent-"+string(rune('a'+i)), "api_calls")
	}
	h.mustRun(at(12, 10))
	for _, l := range h.accounts.links {
		h.usage(l.Tenant, "api_calls", 7)
	}
	other, err := usage.New(h.opts)
	if err != nil {
		t.Fatal(err)
	}
	h.clock.Set(at(13, 5))
	done := make(chan error, 1)
	go func() { _, err := other.Run(context.Background()); done <- err }()
	_, err1 := h.r.Run(context.Background())
	err2 := <-done
	if err1 != nil && fault.ErrorCode(err1) != fault.Unavailable || err2 != nil && fault.ErrorCode(err2) != fault.Unavailable {
		t.Fatalf("concurrent runs: %v, %v", err1, err2)
	}
	h.mustRun(at(13, 30)) // finishes whatever the race left
	ops := h.sc.Reports()
	if len(ops) != 20 {
		t.Fatalf("%d operations reported; want 20", len(ops))
	}
	for _, op := range ops {
		if op.Metrics[metricName] != 7 || !op.Start.Equal(at(12, 0)) {
			t.Errorf("operation %+v; want [12:00, 13:00) = 7", op)
		}
	}
}

func TestMetricNames(t *testing.T) {
	plain := newHarness(t, nil)
	if got, ok := plain.r.MetricName("api_calls"); !ok || got != "example/api_calls" {
		t.Errorf("default MetricName(api_calls) = %q, %v; want example/api_calls", got, ok)
	}
	h := newHarness(t, func(o *usage.Options) { o.Metrics = map[string]string{"storage": "example/StorageGiB"} })
	if got, ok := h.r.MetricName("storage"); !ok || got != "example/StorageGiB" {
		t.Errorf("mapped MetricName(storage) = %q, %v; want example/StorageGiB", got, ok)
	}
	if _, ok := h.r.MetricName("seats"); ok {
		t.Error("an unmapped metric is reported though Metrics is set")
	}
	tenant := h.customer("acct-1", "ent-1", "storage", "seats")
	h.mustRun(at(12, 10))
	h.usage(tenant, "storage", 3)
	h.usage(tenant, "seats", 4)
	h.mustRun(at(13, 5))
	ops := h.sc.Reports()
	if len(ops) != 1 || ops[0].Metrics["example/StorageGiB"] != 3 {
		t.Errorf("reported %+v; want only storage as example/StorageGiB = 3", ops)
	}
}

func TestNewRefusesIncompleteOptions(t *testing.T) {
	h := newHarness(t, nil)
	for name, tweak := range map[string]func(*usage.Options){
		"no service":      func(o *usage.Options) { o.Service = "" },
		"no client":       func(o *usage.Options) { o.Client = nil },
		"no store":        func(o *usage.Options) { o.Windows = nil },
		"no publisher":    func(o *usage.Options) { o.Publisher = nil },
		"bad metric name": func(o *usage.Options) { o.Metrics = map[string]string{"a/b": "x"} },
	} {
		o := h.opts
		tweak(&o)
		if _, err := usage.New(o); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("%s: New = %v; want Invalid", name, err)
		}
	}
}

func TestHandler(t *testing.T) {
	h := newHarness(t, nil)
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 5)
	h.clock.Set(at(13, 5))
	tests := []struct {
		name   string
		method string
		body   string
		status int
	}{
		{"get is refused", http.MethodGet, "", http.StatusMethodNotAllowed},
		{"oversized body is refused", http.MethodPost, `{"x":"` + strings.Repeat("a", 4<<10) + `"}`, http.StatusRequestEntityTooLarge},
		{"unknown field is refused", http.MethodPost, `{"tenant":"x"}`, http.StatusBadRequest},
		{"not json is refused", http.MethodPost, `{`, http.StatusBadRequest},
		{"empty object runs", http.MethodPost, `{}`, http.StatusOK},
		{"empty body runs", http.MethodPost, ``, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.r.Handler().ServeHTTP(rec, httptest.NewRequest(tc.method, usage.Path, strings.NewReader(tc.body)))
			if rec.Code != tc.status {
				t.Fatalf("status %d (%s); want %d", rec.Code, rec.Body, tc.status)
			}
		})
	}
	if n := len(h.sc.Reports()); n != 1 {
		t.Errorf("%d operations reported through the handler; want 1", n)
	}
}

func TestHandlerRefusesAnOverlappingRun(t *testing.T) {
	h := newHarness(t, nil)
	h.customer("acct-1", "ent-1", "api_calls")
	h.gov.entered, h.gov.gate = make(chan struct{}, 1), make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); _, _ = h.r.Run(context.Background()) }()
	<-h.gov.entered
	rec := httptest.NewRecorder()
	h.r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, usage.Path, nil))
	close(h.gov.gate)
	<-done
	if rec.Code != http.StatusConflict {
		t.Fatalf("status %d (%s) while a run is in progress; want 409", rec.Code, rec.Body)
	}
}

func TestHandlerAnswers503WhenWorkIsLeft(t *testing.T) {
	h := newHarness(t, func(o *usage.Options) { o.Attempts = 1 })
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 5)
	h.clock.Set(at(13, 5))
	h.sc.FailNext("", http.StatusServiceUnavailable, 1)
	rec := httptest.NewRecorder()
	h.r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, usage.Path, nil))
	var body struct {
		Report usage.Report
		Error  struct{ Code string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusServiceUnavailable || body.Error.Code != string(fault.Unavailable) || body.Report.Failed != 1 {
		t.Fatalf("status %d body %s; want 503 with the report", rec.Code, rec.Body)
	}
}

func TestGovernorOutageIsUnavailable(t *testing.T) {
	h := newHarness(t, nil)
	h.customer("acct-1", "ent-1", "api_calls")
	h.gov.fail = fault.Errorf(fault.Unavailable, "test", "firestore down")
	if _, err := h.run(at(13, 5)); fault.ErrorCode(err) != fault.Unavailable {
		t.Fatalf("run with the governors unreadable = %v; want Unavailable", err)
	}
}

// BenchmarkReportRun measures one run over 100 entitlements × 3 metrics
// against the stand-in.
func BenchmarkReportRun(b *testing.B) {
	h := newHarness(b, nil)
	var tenants []string
	for i := range 100 {
		tenants = append(tenants, h.customer("acct-"+strings.Repeat("a", i/26)+string(rune('a'+i%26)), "ent-"+strings.Repeat("a", i/26)+string(rune('a'+i%26)), "api_calls", "storage", "seats"))
	}
	h.mustRun(at(12, 10))
	hour := at(13, 5)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for _, t := range tenants {
			h.usage(t, "api_calls", int64(i+1))
		}
		b.StartTimer()
		rep := h.mustRun(hour)
		if rep.Reported != 300 {
			b.Fatalf("reported %d; want 300", rep.Reported)
		}
		hour = hour.Add(time.Hour)
	}
}

func TestCancelledEntitlementStillSendsItsRecordedWindows(t *testing.T) {
	h := newHarness(t, func(o *usage.Options) { o.Attempts = 1 })
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 11)
	h.sc.FailNext(scstandin.MethodReport, http.StatusServiceUnavailable, 1)
	_, _ = h.run(at(13, 5))
	h.gov.put(tenant, governor.Entitlement, "ent-1", "cancelled", `{"plan":"metered","usage_reporting_id":"`+consumer("ent-1")+`"}`)
	h.usage(tenant, "api_calls", 20)
	h.mustRun(at(15, 5))
	ops := h.reported("ent-1", metricName)
	if len(ops) != 1 || ops[0].Metrics[metricName] != 11 || !ops[0].End.Equal(at(13, 0)) {
		t.Fatalf("reported %+v; want only the recorded [12,13)=11", ops)
	}
}

func TestOutageKeepsHourlyWindowsAndReportsThemLate(t *testing.T) {
	h := newHarness(t, func(o *usage.Options) { o.Attempts = 1 })
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	for i, hour := range []int{13, 14, 15} {
		h.usage(tenant, "api_calls", int64(10*(i+1)))
		h.sc.FailNext(scstandin.MethodCheck, http.StatusServiceUnavailable, 1)
		if _, err := h.run(at(hour, 5)); fault.ErrorCode(err) != fault.Unavailable {
			t.Fatalf("run at %d:05 with Service Control down = %v; want Unavailable", hour, err)
		}
	}
	h.usage(tenant, "api_calls", 45)
	rep := h.mustRun(at(16, 5))
	ops := h.reported("ent-1", metricName)
	var got []int64
	next := at(12, 0)
	for _, op := range ops {
		if !op.Start.Equal(next) || op.End.Sub(op.Start) != time.Hour {
			t.Errorf("window [%s, %s); want the hour from %s", op.Start, op.End, next)
		}
		next = op.End
		got = append(got, op.Metrics[metricName])
	}
	if len(got) != 4 || got[0] != 10 || got[1] != 10 || got[2] != 10 || got[3] != 15 {
		t.Errorf("values %v; want [10 10 10 15]", got)
	}
	if rep.Late != 3 || rep.Resent != 3 {
		t.Errorf("late %d resent %d; want 3 and 3", rep.Late, rep.Resent)
	}
}

func TestHostileCheckDetailMakesAValidReason(t *testing.T) {
	h := newHarness(t, nil)
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 5)
	h.sc.BlockConsumer(consumer("ent-1"), "BILLING_DISABLED\n\x00"+strings.Repeat("é", 400))
	h.mustRun(at(13, 5))
	evs := h.events()
	if len(evs) != 1 {
		t.Fatalf("%d events; want usage_blocked", len(evs))
	}
	var d struct{ Reason string }
	if err := json.Unmarshal(evs[0].Data, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Reason) > usage.MaxReason || strings.ContainsAny(d.Reason, "\n\x00") || !strings.HasPrefix(d.Reason, "BILLING_DISABLED") {
		t.Errorf("reason of %d bytes %q; want at most %d bytes, no control characters", len(d.Reason), d.Reason[:40], usage.MaxReason)
	}
}

func TestCheckErrorDuringAPendingChangeIsHeldWithoutAnEvent(t *testing.T) {
	h := newHarness(t, nil)
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 5)
	h.gov.put(tenant, governor.Entitlement, "ent-1", "pending_plan_change", `{"plan":"metered","usage_reporting_id":"`+consumer("ent-1")+`"}`)
	h.sc.BlockConsumer(consumer("ent-1"), "BILLING_DISABLED")
	rep := h.mustRun(at(13, 5))
	if rep.CheckFailed != 1 || len(h.events()) != 0 || len(h.sc.Reports()) != 0 {
		t.Fatalf("report %+v, %d events; want the window held and no event", rep, len(h.events()))
	}
	h.gov.put(tenant, governor.Entitlement, "ent-1", "active", `{"plan":"metered","usage_reporting_id":"`+consumer("ent-1")+`"}`)
	h.mustRun(at(13, 30))
	if evs := h.events(); len(evs) != 1 || evs[0].Name != usage.EventBlocked {
		t.Fatalf("events %+v once active again; want usage_blocked", evs)
	}
}

// TestHandlerRefusesAnotherIdentity starts a run as a caller other than
// the scheduler: 403 and nothing checked or reported.
func TestHandlerRefusesAnotherIdentity(t *testing.T) {
	const scheduler = "scheduler@example.iam.gserviceaccount.com"
	h := newHarness(t, func(o *usage.Options) { o.Callers = []string{scheduler} })
	tenant := h.customer("acct-1", "ent-1", "api_calls")
	h.mustRun(at(12, 10))
	h.usage(tenant, "api_calls", 5)
	h.clock.Set(at(13, 5))
	post := func(auth string) int {
		req := httptest.NewRequest(http.MethodPost, usage.Path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.r.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	for _, auth := range []string{"", bearer("intruder@example.com")} {
		if code := post(auth); code != http.StatusForbidden {
			t.Errorf("run with %q = %d, want 403", auth, code)
		}
	}
	if n := len(h.sc.Calls()); n != 0 {
		t.Fatalf("a forbidden run made %d Service Control calls", n)
	}
	if code := post(bearer(scheduler)); code != http.StatusOK {
		t.Fatalf("run as the scheduler = %d, want 200", code)
	}
	if n := len(h.sc.Reports()); n != 1 {
		t.Errorf("%d operations reported by the scheduler's run; want 1", n)
	}
}

// bearer is an Authorization header carrying an unsigned ID token for
// email, as Cloud Run forwards it.
func bearer(email string) string {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	return "Bearer " + enc(`{"alg":"RS256"}`) + "." + enc(`{"email":"`+email+`"}`) + ".sig"
}
