package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/store"
)

func testMissingInstance(f *fixture) {
	for _, k := range []governor.Key{
		f.key(governor.CustomerAccount, governor.DefaultSubject),
		f.key(governor.Billing, "2026-11"),
		f.key(governor.Entitlement, "ent-1.a_b"),
	} {
		f.Run(string(k.Domain)+"/"+k.Subject, func(t *testing.T) {
			f := f.with(t)
			got := f.read(k)
			if d := diffInstance(got, newInstance(k)); d != "" {
				t.Errorf("Instance(%s) = %+v: %s", k, got, d)
			}
			if hash, found := f.dedup(k, testSource, "evt-1"); found {
				t.Errorf("Dedup(%s, %q, %q) = %q, true; want not found", k, testSource, "evt-1", hash)
			}
		})
	}
}

func testInstanceRoundTrip(f *fixture) {
	k := f.key(governor.Subscription, "sub-1")
	c := decision(newInstance(k), f.id("e1"), "past_due", f.at(time.Hour))
	c.Instance.Data = json.RawMessage(`{"plan":"pro","seats":3,"flags":{"cancel_at_period_end":false},"note":"é \"q\""}`)
	c.Instance.Timers = map[string]governor.Timer{
		"grace":      {Name: "grace", ID: "timer-grace-1", Due: f.at(7 * 24 * time.Hour)},
		"period_end": {Name: "period_end", ID: "timer-period-1", Due: f.at(30 * 24 * time.Hour)},
	}
	want := c.Instance
	want.Data = slices.Clone(c.Instance.Data)
	want.Timers = maps.Clone(c.Instance.Timers)
	f.mustCommit(c)
	// What the caller does with the written changes must not reach the
	// store.
	c.Instance.Data[0] = '['
	c.Instance.Timers["extra"] = governor.Timer{Name: "extra", ID: "x"}

	got := f.read(k)
	if d := diffInstance(got, want); d != "" {
		f.Errorf("Instance(%s) after Write = %+v: %s", k, got, d)
	}
	if got.UpdatedAt.Location() != time.UTC {
		f.Errorf("Instance(%s).UpdatedAt = %v, want UTC", k, got.UpdatedAt)
	}
	for name, tm := range got.Timers {
		if tm.Due.Location() != time.UTC {
			f.Errorf("Instance(%s).Timers[%q].Due = %v, want UTC", k, name, tm.Due)
		}
	}

	// Nor what it does with a returned instance.
	got.Data[0] = '['
	got.Timers["grace"] = governor.Timer{Name: "grace", ID: "mutated"}
	delete(got.Timers, "period_end")
	if again := f.read(k); diffInstance(again, want) != "" {
		f.Errorf("Instance(%s) after mutating a returned instance = %+v: %s", k, again, diffInstance(again, want))
	}
	list, err := f.s.Instances(f.ctx, f.tenant, "")
	if err != nil || len(list) != 1 || diffInstance(list[0], want) != "" {
		f.Errorf("Instances(%q, \"\") = %+v, %v; want [%+v], nil", f.tenant, list, err, want)
	}
}

func testInstanceOverwrite(f *fixture) {
	k := f.key(governor.Billing, "2026-11")
	inst := newInstance(k)
	inst.Data = json.RawMessage(`{"meters":{"api":5}}`)
	inst.Timers = map[string]governor.Timer{"retry": {Name: "retry", ID: "timer-retry-1", Due: f.at(48 * time.Hour)}}
	f.step(&inst, f.id("e1"), "dunning", f.at(time.Minute))

	// The second decision drops the timer and the data: a Write replaces
	// the instance, it does not merge into it.
	inst.Data = nil
	inst.Timers = nil
	f.step(&inst, f.id("e2"), "paid", f.at(2*time.Minute))
	got := f.read(k)
	if d := diffInstance(got, inst); d != "" {
		f.Errorf("Instance(%s) after the second Write = %+v: %s", k, got, d)
	}
	if got.Version != 2 {
		f.Errorf("Instance(%s).Version = %d, want 2", k, got.Version)
	}
}

func testDedup(f *fixture) {
	k := f.key(governor.Billing, "2026-11")
	c := decision(newInstance(k), f.id("evt"), "open", f.at(0))
	f.mustCommit(c)
	// A decision without a dedup marker is allowed (and marks nothing).
	nodedup := decision(newInstance(f.key(governor.Billing, "2026-10")), f.id("evt"), "open", f.at(0))
	nodedup.Dedup = store.Dedup{}
	f.mustCommit(nodedup)
	tests := []struct {
		name       string
		key        governor.Key
		source, id string
		found      bool
	}{
		{"same event", k, testSource, f.id("evt"), true},
		{"other source", k, testSource + "/other", f.id("evt"), false},
		{"other id", k, testSource, f.id("evt2"), false},
		{"other subject", f.key(governor.Billing, "2026-12"), testSource, f.id("evt"), false},
		{"instance written without marker", nodedup.Instance.Key, testSource, f.id("evt"), false},
		{"other domain", f.key(governor.Subscription, "2026-11"), testSource, f.id("evt"), false},
		{"other tenant", governor.Key{Tenant: f.tenant + "x", Domain: k.Domain, Subject: k.Subject}, testSource, f.id("evt"), false},
	}
	for _, tc := range tests {
		f.Run(tc.name, func(t *testing.T) {
			f := f.with(t)
			hash, found := f.dedup(tc.key, tc.source, tc.id)
			want := ""
			if tc.found {
				want = c.Receipt.Hash
			}
			if found != tc.found || hash != want {
				t.Errorf("Dedup(%s, %q, %q) = %q, %v; want %q, %v", tc.key, tc.source, tc.id, hash, found, want, tc.found)
			}
		})
	}
}

func testInstances(f *fixture) {
	other := f.tenant + "-b"
	type entry struct {
		key   governor.Key
		state governor.State
	}
	// Written out of order; listed by domain, then subject.
	written := []entry{
		{f.key(governor.Subscription, "s2"), "active"},
		{f.key(governor.Billing, "2026-02"), "open"},
		{f.key(governor.Subscription, "s1"), "trialing"},
		{f.key(governor.Billing, "2026-01"), "paid"},
		{f.key(governor.Subscription, "s1-x"), "paused"},
		{f.key(governor.Entitlement, "e1"), "active"},
		{governor.Key{Tenant: other, Domain: governor.Billing, Subject: "2026-01"}, "invoiced"},
	}
	want := map[governor.Key]governor.Instance{}
	for i, e := range written {
		inst := newInstance(e.key)
		inst.Data = json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))
		f.step(&inst, f.id(fmt.Sprint("e", i)), e.state, f.at(time.Duration(i)*time.Minute))
		want[e.key] = inst
	}
	tests := []struct {
		tenant string
		domain governor.Domain
		want   []governor.Key
	}{
		{f.tenant, "", []governor.Key{
			f.key(governor.Billing, "2026-01"), f.key(governor.Billing, "2026-02"),
			f.key(governor.Entitlement, "e1"),
			f.key(governor.Subscription, "s1"), f.key(governor.Subscription, "s1-x"), f.key(governor.Subscription, "s2"),
		}},
		{f.tenant, governor.Billing, []governor.Key{f.key(governor.Billing, "2026-01"), f.key(governor.Billing, "2026-02")}},
		{f.tenant, governor.Subscription, []governor.Key{
			f.key(governor.Subscription, "s1"), f.key(governor.Subscription, "s1-x"), f.key(governor.Subscription, "s2"),
		}},
		{f.tenant, governor.QuotaSLA, nil},
		{other, "", []governor.Key{{Tenant: other, Domain: governor.Billing, Subject: "2026-01"}}},
		{f.tenant + "-none", "", nil},
	}
	for _, tc := range tests {
		f.Run(fmt.Sprintf("%s/%s", tc.tenant, tc.domain), func(t *testing.T) {
			got, err := f.s.Instances(t.Context(), tc.tenant, tc.domain)
			if err != nil {
				t.Fatalf("Instances(%q, %q) = %v, want nil", tc.tenant, tc.domain, err)
			}
			keys := make([]governor.Key, len(got))
			for i, inst := range got {
				keys[i] = inst.Key
			}
			if fmt.Sprint(keys) != fmt.Sprint(tc.want) {
				t.Fatalf("Instances(%q, %q) = %v, want %v", tc.tenant, tc.domain, keys, tc.want)
			}
			for _, inst := range got {
				if d := diffInstance(inst, want[inst.Key]); d != "" {
					t.Errorf("Instances(%q, %q): %s: %s", tc.tenant, tc.domain, inst.Key, d)
				}
			}
		})
	}
}

func testInvalidKeys(f *fixture) {
	keys := []struct {
		name string
		key  governor.Key
	}{
		{"zero", governor.Key{}},
		{"no tenant", governor.Key{Domain: governor.Billing, Subject: "x"}},
		{"no domain", governor.Key{Tenant: f.tenant, Subject: "x"}},
		{"no subject", governor.Key{Tenant: f.tenant, Domain: governor.Billing}},
		{"slash in subject", governor.Key{Tenant: f.tenant, Domain: governor.Billing, Subject: "a/b"}},
		{"slash in tenant", governor.Key{Tenant: "a/b", Domain: governor.Billing, Subject: "x"}},
	}
	for _, tc := range keys {
		f.Run(tc.name, func(t *testing.T) {
			f := f.with(t)
			err := f.s.RunTx(f.ctx, func(ctx context.Context, tx store.Tx) error {
				_, err := tx.Instance(tc.key)
				f.checkCode(fmt.Sprintf("Instance(%+v)", tc.key), err, fault.Invalid)
				_, _, err = tx.Dedup(tc.key, testSource, "evt")
				f.checkCode(fmt.Sprintf("Dedup(%+v)", tc.key), err, fault.Invalid)
				return nil
			})
			if err != nil {
				t.Errorf("RunTx = %v, want nil", err)
			}
			_, err = f.s.Chain(f.ctx, tc.key, 0, 0)
			f.checkCode(fmt.Sprintf("Chain(%+v)", tc.key), err, fault.Invalid)
		})
	}
	_, err := f.s.Instances(f.ctx, "", "")
	f.checkCode(`Instances("", "")`, err, fault.Invalid)
	_, err = f.s.Instances(f.ctx, "a/b", "")
	f.checkCode(`Instances("a/b", "")`, err, fault.Invalid)
}
