// Package alertingtest is the conformance suite of the alerting storage
// port: every alerting.Store adapter runs RunConformanceTests from its own
// tests, so that the in-memory store used in unit tests and the Firestore
// store used in production behave alike.
//
// The suite pins what the port leaves to adapters: NotFound for missing
// policies, silences and alerts (on get and delete); Invalid for invalid
// policies, silence ids, alerts and lease names; lists sorted by name, id
// and fingerprint; values round-trip whole, times in UTC with microsecond
// precision, nil and empty label maps and lists alike; commits larger than
// one Firestore transaction; one winner among concurrent acquisitions of
// a lease; renewal by the holder; takeover after expiry; release; fenced
// commits refused with Conflict once the lease is lost; MarkSent moving
// ids; and Unavailable for a cancelled context.
package alertingtest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/fault"
)

// RunConformanceTests runs the suite, one subtest per behaviour, each on
// a store returned by newStore. newStore must return a store whose data no
// other test touches (an empty store, or one in a namespace of its own).
func RunConformanceTests(t *testing.T, newStore func(t *testing.T) alerting.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s alerting.Store)
	}{
		{"Policies", testPolicies},
		{"InvalidPolicy", testInvalidPolicy},
		{"Silences", testSilences},
		{"Alerts", testAlerts},
		{"LargeCommit", testLargeCommit},
		{"InvalidAlert", testInvalidAlert},
		{"Lease", testLease},
		{"FencedCommit", testFencedCommit},
		{"ConcurrentAcquire", testConcurrentAcquire},
		{"MarkSent", testMarkSent},
		{"CancelledContext", testCancelledContext},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore(t)) })
	}
}

// base is the suite's reference time, with sub-microsecond digits that
// stores drop.
var base = time.Date(2026, 11, 3, 8, 15, 0, 123456789, time.UTC)

func us(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func wantCode(t *testing.T, what string, err error, code fault.Code) {
	t.Helper()
	if got := fault.ErrorCode(err); got != code {
		t.Errorf("%s = %v (code %q), want code %q", what, err, got, code)
	}
}

func testPolicies(t *testing.T, s alerting.Store) {
	ctx := t.Context()
	p := alerting.Policy{
		Name: "cpu-high", Metric: "cpu_utilization", Labels: alerting.Labels{"region": "eu", "tier": "web"},
		Comparison: alerting.GT, Threshold: 0.85, For: 5 * time.Minute, KeepFiringFor: 90 * time.Second,
		AbsentFor: 10 * time.Minute, Severity: alerting.Critical,
	}
	created, err := s.PutPolicy(ctx, p)
	if err != nil || !created {
		t.Fatalf("PutPolicy(%s) = %v, %v, want true, nil", p.Name, created, err)
	}
	got, err := s.Policy(ctx, p.Name)
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("Policy(%s) = %+v, %v, want %+v", p.Name, got, err, p)
	}
	p2 := alerting.Policy{Name: "absent-only", Metric: "heartbeat", AbsentFor: time.Minute, Severity: alerting.Warning}
	if _, err := s.PutPolicy(ctx, p2); err != nil {
		t.Fatalf("PutPolicy(%s) = %v", p2.Name, err)
	}
	got2, err := s.Policy(ctx, p2.Name)
	if err != nil || got2.Name != p2.Name || len(got2.Labels) != 0 || got2.Comparison != "" || got2.AbsentFor != time.Minute {
		t.Errorf("Policy(%s) = %+v, %v, want %+v", p2.Name, got2, err, p2)
	}
	p.Threshold = 0.9
	if created, err := s.PutPolicy(ctx, p); err != nil || created {
		t.Errorf("PutPolicy(replace) = %v, %v, want false, nil", created, err)
	}
	list, err := s.Policies(ctx)
	if err != nil {
		t.Fatalf("Policies() = %v", err)
	}
	var names []string
	for _, q := range list {
		names = append(names, q.Name)
	}
	if want := []string{"absent-only", "cpu-high"}; !slices.Equal(names, want) {
		t.Errorf("Policies() names = %v, want %v", names, want)
	}
	if list[1].Threshold != 0.9 {
		t.Errorf("Policies()[1].Threshold = %v, want 0.9", list[1].Threshold)
	}
	if err := s.DeletePolicy(ctx, p.Name); err != nil {
		t.Errorf("DeletePolicy(%s) = %v", p.Name, err)
	}
	_, err = s.Policy(ctx, p.Name)
	wantCode(t, "Policy(deleted)", err, fault.NotFound)
	wantCode(t, "DeletePolicy(deleted)", s.DeletePolicy(ctx, p.Name), fault.NotFound)
}

func testInvalidPolicy(t *testing.T, s alerting.Store) {
	ctx := t.Context()
	for _, p := range []alerting.Policy{
		{Name: "a/b", Metric: "m", Comparison: alerting.GT, Severity: alerting.Warning},
		{Name: "", Metric: "m", Comparison: alerting.GT, Severity: alerting.Warning},
		{Name: "x", Metric: "bad metric", Comparison: alerting.GT, Severity: alerting.Warning},
		{Name: "x", Metric: "m", Comparison: "eq", Severity: alerting.Warning},
	} {
		_, err := s.PutPolicy(ctx, p)
		wantCode(t, fmt.Sprintf("PutPolicy(%+v)", p), err, fault.Invalid)
	}
	_, err := s.Policy(ctx, "missing")
	wantCode(t, "Policy(missing)", err, fault.NotFound)
}

func testSilences(t *testing.T, s alerting.Store) {
	ctx := t.Context()
	sl := alerting.Silence{
		ID: "maint-42", Matchers: alerting.Labels{"alertname": "cpu-high", "region": "eu"},
		StartsAt: base, EndsAt: base.Add(2 * time.Hour), Comment: "planned maintenance ✓", CreatedAt: base,
	}
	if created, err := s.PutSilence(ctx, sl); err != nil || !created {
		t.Fatalf("PutSilence = %v, %v, want true, nil", created, err)
	}
	want := sl
	want.StartsAt, want.EndsAt, want.CreatedAt = us(sl.StartsAt), us(sl.EndsAt), us(sl.CreatedAt)
	got, err := s.Silence(ctx, sl.ID)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Silence(%s) = %+v, %v, want %+v", sl.ID, got, err, want)
	}
	sl.EndsAt = base.Add(time.Hour)
	if created, err := s.PutSilence(ctx, sl); err != nil || created {
		t.Errorf("PutSilence(replace) = %v, %v, want false, nil", created, err)
	}
	if _, err := s.PutSilence(ctx, alerting.Silence{ID: "a-first", Matchers: alerting.Labels{"x": "y"}, EndsAt: base}); err != nil {
		t.Fatalf("PutSilence(a-first) = %v", err)
	}
	list, err := s.Silences(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "a-first" || list[1].ID != "maint-42" || !list[1].EndsAt.Equal(us(sl.EndsAt)) {
		t.Errorf("Silences() = %+v, %v, want a-first then maint-42 ending %v", list, err, sl.EndsAt)
	}
	_, err = s.PutSilence(ctx, alerting.Silence{ID: "bad/id", Matchers: alerting.Labels{"x": "y"}, EndsAt: base})
	wantCode(t, "PutSilence(bad/id)", err, fault.Invalid)
	if err := s.DeleteSilence(ctx, sl.ID); err != nil {
		t.Errorf("DeleteSilence = %v", err)
	}
	_, err = s.Silence(ctx, sl.ID)
	wantCode(t, "Silence(deleted)", err, fault.NotFound)
	wantCode(t, "DeleteSilence(deleted)", s.DeleteSilence(ctx, sl.ID), fault.NotFound)
}

// acquire takes lease name for holder at now or fails the test.
func acquire(t *testing.T, s alerting.Store, name, holder string, now time.Time) alerting.Fence {
	t.Helper()
	l, err := s.AcquireLease(t.Context(), name, holder, now, time.Minute)
	if err != nil || !l.HeldBy(holder, now) {
		t.Fatalf("AcquireLease(%s, %s) = %+v, %v, want held", name, holder, l, err)
	}
	return alerting.Fence{Lease: name, Holder: holder, Now: now}
}

// sampleAlert returns a fully populated alert.
func sampleAlert(i int) alerting.Alert {
	labels := alerting.Labels{"tenant": fmt.Sprintf("acme-%d", i), "region": "eu"}
	fp := alerting.Fingerprint("cpu-high", labels)
	return alerting.Alert{
		Fingerprint: fp, Policy: "cpu-high", Severity: alerting.Critical, Labels: labels,
		State: alerting.Firing, Reason: alerting.ReasonThreshold, Value: 0.975 + float64(i),
		ActiveAt: base, FiredAt: base.Add(5 * time.Minute), LastNotifiedAt: base.Add(5 * time.Minute),
		KeepFiringSince: base.Add(6 * time.Minute), Notified: true, UpdatedAt: base.Add(6 * time.Minute),
		Outbox: []alerting.Notification{{
			ID: alerting.NotificationID(fp, "firing", base.Add(5*time.Minute)), Channel: alerting.ChannelAlerts,
			Type: alerting.TypeFiring, Tenant: labels["tenant"], Subject: "cpu-high", Time: base.Add(5 * time.Minute),
			Data: []byte(`{"fingerprint":"` + fp + `"}`),
		}},
		Sent: []string{"older-1", "older-2"},
	}
}

// normal returns a with times in UTC to the microsecond and empty
// collections as nil, for comparison.
func normal(a alerting.Alert) alerting.Alert {
	a = a.Clone()
	for _, p := range []*time.Time{&a.ActiveAt, &a.FiredAt, &a.ResolvedAt, &a.LastNotifiedAt, &a.KeepFiringSince, &a.UpdatedAt} {
		if p.IsZero() {
			*p = time.Time{}
		} else {
			*p = us(*p)
		}
	}
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(a.Outbox) == 0 {
		a.Outbox = nil
	}
	for i := range a.Outbox {
		a.Outbox[i].Time = us(a.Outbox[i].Time)
	}
	if len(a.Sent) == 0 {
		a.Sent = nil
	}
	return a
}

func testAlerts(t *testing.T, s alerting.Store) {
	ctx := t.Context()
	f := acquire(t, s, "alerts", "holder-a", base)
	a, b := sampleAlert(1), sampleAlert(2)
	b.State, b.Outbox, b.Sent, b.Labels = alerting.Pending, nil, nil, nil
	b.Fingerprint = alerting.Fingerprint("cpu-high", nil)
	b.FiredAt, b.LastNotifiedAt, b.KeepFiringSince, b.Notified = time.Time{}, time.Time{}, time.Time{}, false
	if err := s.CommitAlerts(ctx, f, []alerting.Alert{a, b}, nil); err != nil {
		t.Fatalf("CommitAlerts = %v", err)
	}
	for _, want := range []alerting.Alert{a, b} {
		got, err := s.Alert(ctx, want.Fingerprint)
		if err != nil || !reflect.DeepEqual(normal(got), normal(want)) {
			t.Errorf("Alert(%s) =\n%+v, %v\nwant\n%+v", want.Fingerprint, normal(got), err, normal(want))
		}
	}
	list, err := s.Alerts(ctx)
	if err != nil || len(list) != 2 || list[0].Fingerprint > list[1].Fingerprint {
		t.Errorf("Alerts() = %d alerts, %v, want 2 sorted by fingerprint", len(list), err)
	}
	a.State = alerting.Resolved
	a.ResolvedAt = base.Add(9 * time.Minute)
	if err := s.CommitAlerts(ctx, f, []alerting.Alert{a}, []string{b.Fingerprint, "0000000000000000"}); err != nil {
		t.Fatalf("CommitAlerts(update, delete) = %v", err)
	}
	got, err := s.Alert(ctx, a.Fingerprint)
	if err != nil || got.State != alerting.Resolved || !got.ResolvedAt.Equal(us(a.ResolvedAt)) {
		t.Errorf("Alert(updated) = %+v, %v, want resolved at %v", got, err, a.ResolvedAt)
	}
	_, err = s.Alert(ctx, b.Fingerprint)
	wantCode(t, "Alert(deleted)", err, fault.NotFound)
}

func testLargeCommit(t *testing.T, s alerting.Store) {
	ctx := t.Context()
	f := acquire(t, s, "large", "holder-a", base)
	const n = 650
	put := make([]alerting.Alert, n)
	del := make([]string, n)
	for i := range put {
		put[i] = sampleAlert(i)
		del[i] = put[i].Fingerprint
	}
	if err := s.CommitAlerts(ctx, f, put, nil); err != nil {
		t.Fatalf("CommitAlerts(%d alerts) = %v", n, err)
	}
	list, err := s.Alerts(ctx)
	if err != nil || len(list) != n {
		t.Fatalf("Alerts() = %d alerts, %v, want %d", len(list), err, n)
	}
	if err := s.CommitAlerts(ctx, f, nil, del); err != nil {
		t.Fatalf("CommitAlerts(delete %d) = %v", n, err)
	}
	if list, err := s.Alerts(ctx); err != nil || len(list) != 0 {
		t.Errorf("Alerts() after delete = %d alerts, %v, want 0", len(list), err)
	}
}

func testInvalidAlert(t *testing.T, s alerting.Store) {
	ctx := t.Context()
	f := acquire(t, s, "invalid", "holder-a", base)
	for _, mod := range []func(*alerting.Alert){
		func(a *alerting.Alert) { a.Fingerprint = "not/hex" },
		func(a *alerting.Alert) { a.State = "exploded" },
		func(a *alerting.Alert) { a.Policy = "" },
	} {
		a := sampleAlert(1)
		mod(&a)
		wantCode(t, fmt.Sprintf("CommitAlerts(%s %q)", a.Fingerprint, a.State), s.CommitAlerts(ctx, f, []alerting.Alert{a}, nil), fault.Invalid)
	}
	_, err := s.Alert(ctx, sampleAlert(1).Fingerprint)
	wantCode(t, "Alert(never written)", err, fault.NotFound)
	_, err = s.AcquireLease(ctx, "bad/lease", "h", base, time.Minute)
	wantCode(t, "AcquireLease(bad/lease)", err, fault.Invalid)
}

func testLease(t *testing.T, s alerting.Store) {
	ctx := t.Context()
	const name = "evaluator"
	l, err := s.AcquireLease(ctx, name, "a", base, time.Minute)
	if err != nil || !l.HeldBy("a", base) || !l.Expires.Equal(us(base.Add(time.Minute))) || !l.AcquiredAt.Equal(us(base)) {
		t.Fatalf("AcquireLease(a) = %+v, %v, want held by a until %v", l, err, base.Add(time.Minute))
	}
	l, err = s.AcquireLease(ctx, name, "b", base.Add(30*time.Second), time.Minute)
	if err != nil || l.Holder != "a" || l.HeldBy("b", base.Add(30*time.Second)) {
		t.Errorf("AcquireLease(b, while a holds) = %+v, %v, want a's lease", l, err)
	}
	l, err = s.AcquireLease(ctx, name, "a", base.Add(50*time.Second), time.Minute)
	if err != nil || !l.HeldBy("a", base.Add(50*time.Second)) || !l.Expires.Equal(us(base.Add(110*time.Second))) || !l.AcquiredAt.Equal(us(base)) {
		t.Errorf("AcquireLease(a renews) = %+v, %v, want held until %v, acquired at %v", l, err, base.Add(110*time.Second), base)
	}
	l, err = s.AcquireLease(ctx, name, "b", base.Add(100*time.Second), time.Minute)
	if err != nil || l.Holder != "a" {
		t.Errorf("AcquireLease(b, before expiry) = %+v, %v, want a's lease", l, err)
	}
	after := base.Add(110 * time.Second)
	l, err = s.AcquireLease(ctx, name, "b", after, time.Minute)
	if err != nil || !l.HeldBy("b", after) || !l.AcquiredAt.Equal(us(after)) {
		t.Errorf("AcquireLease(b, at expiry) = %+v, %v, want held by b", l, err)
	}
	if err := s.ReleaseLease(ctx, name, "a"); err != nil {
		t.Errorf("ReleaseLease(a, not holder) = %v", err)
	}
	l, _ = s.AcquireLease(ctx, name, "c", after.Add(time.Second), time.Minute)
	if l.Holder != "b" {
		t.Errorf("after ReleaseLease by a non-holder, holder = %q, want b", l.Holder)
	}
	if err := s.ReleaseLease(ctx, name, "b"); err != nil {
		t.Errorf("ReleaseLease(b) = %v", err)
	}
	l, err = s.AcquireLease(ctx, name, "c", after.Add(2*time.Second), time.Minute)
	if err != nil || !l.HeldBy("c", after.Add(2*time.Second)) {
		t.Errorf("AcquireLease(c, after release) = %+v, %v, want held by c", l, err)
	}
	_, err = s.AcquireLease(ctx, name, "", base, time.Minute)
	wantCode(t, "AcquireLease(no holder)", err, fault.Invalid)
	_, err = s.AcquireLease(ctx, name, "d", base, 0)
	wantCode(t, "AcquireLease(zero ttl)", err, fault.Invalid)
}

func testFencedCommit(t *testing.T, s alerting.Store) {
	ctx := t.Context()
	f := acquire(t, s, "fence", "a", base)
	a := sampleAlert(7)
	expired := f
	expired.Now = base.Add(time.Minute)
	wantCode(t, "CommitAlerts(after expiry)", s.CommitAlerts(ctx, expired, []alerting.Alert{a}, nil), fault.Conflict)
	acquire(t, s, "fence", "b", base.Add(time.Minute))
	wantCode(t, "CommitAlerts(by the old holder)", s.CommitAlerts(ctx, alerting.Fence{Lease: "fence", Holder: "a", Now: base.Add(61 * time.Second)}, []alerting.Alert{a}, nil), fault.Conflict)
	wantCode(t, "CommitAlerts(no such lease)", s.CommitAlerts(ctx, alerting.Fence{Lease: "nobody", Holder: "a", Now: base}, []alerting.Alert{a}, nil), fault.Conflict)
	_, err := s.Alert(ctx, a.Fingerprint)
	wantCode(t, "Alert(after refused commits)", err, fault.NotFound)
}

func testConcurrentAcquire(t *testing.T, s alerting.Store) {
	ctx := t.Context()
	const n = 6
	var wg sync.WaitGroup
	held := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			l, err := s.AcquireLease(ctx, "contended", fmt.Sprintf("h%d", i), base, time.Minute)
			errs[i] = err
			held[i] = err == nil && l.HeldBy(fmt.Sprintf("h%d", i), base)
		})
	}
	wg.Wait()
	winners := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("AcquireLease(h%d) = %v", i, errs[i])
		}
		if held[i] {
			winners++
		}
	}
	if winners != 1 {
		t.Errorf("%d concurrent AcquireLease calls: %d winners, want 1", n, winners)
	}
}

func testMarkSent(t *testing.T, s alerting.Store) {
	ctx := t.Context()
	f := acquire(t, s, "marks", "a", base)
	a := sampleAlert(3)
	second := a.Outbox[0]
	second.ID = alerting.NotificationID(a.Fingerprint, "firing", base.Add(10*time.Minute))
	a.Outbox = append(a.Outbox, second)
	if err := s.CommitAlerts(ctx, f, []alerting.Alert{a}, nil); err != nil {
		t.Fatalf("CommitAlerts = %v", err)
	}
	if err := s.MarkSent(ctx, a.Fingerprint, a.Outbox[0].ID, "unknown"); err != nil {
		t.Fatalf("MarkSent = %v", err)
	}
	got, err := s.Alert(ctx, a.Fingerprint)
	wantSent := []string{"older-1", "older-2", a.Outbox[0].ID}
	if err != nil || len(got.Outbox) != 1 || got.Outbox[0].ID != second.ID || !slices.Equal(got.Sent, wantSent) {
		t.Errorf("after MarkSent: outbox %v sent %v (%v), want outbox [%s] sent %v", got.Outbox, got.Sent, err, second.ID, wantSent)
	}
	if err := s.MarkSent(ctx, "ffffffffffffffff", "x"); err != nil {
		t.Errorf("MarkSent(missing alert) = %v, want nil", err)
	}
}

func testCancelledContext(t *testing.T, s alerting.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Policies(ctx)
	wantCode(t, "Policies(cancelled)", err, fault.Unavailable)
	_, err = s.AcquireLease(ctx, "cancelled", "a", base, time.Minute)
	wantCode(t, "AcquireLease(cancelled)", err, fault.Unavailable)
	_, err = s.Alerts(ctx)
	wantCode(t, "Alerts(cancelled)", err, fault.Unavailable)
}
