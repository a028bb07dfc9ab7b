package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

// tenantSet creates one instance in each tenant f.tenant + "-" + suffix,
// a second instance and a second decision in the first tenant (which
// must not list it twice), and returns the tenant ids sorted.
func (f *fixture) tenantSet(suffixes ...string) []string {
	f.Helper()
	var out []string
	for i, sfx := range suffixes {
		tenant := f.tenant + "-" + sfx
		inst := newInstance(governor.Key{Tenant: tenant, Domain: governor.Billing, Subject: "2026-01"})
		f.step(&inst, f.id(fmt.Sprint("t", i)), "open", f.at(time.Duration(i)*time.Second))
		if i == 0 {
			f.step(&inst, f.id("again"), "closed", f.at(time.Hour))
			other := newInstance(governor.Key{Tenant: tenant, Domain: governor.Subscription, Subject: "sub-1"})
			f.step(&other, f.id("other"), "active", f.at(time.Hour))
		}
		out = append(out, tenant)
	}
	slices.Sort(out)
	return out
}

// tenants calls Tenants and fails the test on error.
func (f *fixture) tenants(q store.TenantQuery) []string {
	f.Helper()
	got, err := f.s.Tenants(f.ctx, q)
	if err != nil {
		f.Fatalf("Tenants(%+v) = %v, want nil", q, err)
	}
	return got
}

func testTenants(f *fixture) {
	base := f.tenant + "-"
	if got := f.tenants(store.TenantQuery{Prefix: base}); len(got) != 0 {
		f.Fatalf("Tenants(prefix %q) before any decision = %q, want none", base, got)
	}
	all := f.tenantSet("b", "a", "ba", "bb", "c", "z", "é", "éa", "\u4e16")
	pick := func(sfx ...string) []string {
		var out []string
		for _, s := range sfx {
			out = append(out, base+s)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name string
		q    store.TenantQuery
		want []string
	}{
		{"prefix", store.TenantQuery{Prefix: base}, all},
		{"narrower prefix", store.TenantQuery{Prefix: base + "b"}, pick("b", "ba", "bb")},
		{"prefix is an id", store.TenantQuery{Prefix: base + "bb"}, pick("bb")},
		{"prefix and after it", store.TenantQuery{Prefix: base + "b", After: base + "b"}, pick("ba", "bb")},
		{"after inside the prefix", store.TenantQuery{Prefix: base + "b", After: base + "ba"}, pick("bb")},
		{"after the last", store.TenantQuery{Prefix: base + "b", After: base + "bb"}, nil},
		{"after before the prefix", store.TenantQuery{Prefix: base + "b", After: base + "a"}, pick("b", "ba", "bb")},
		{"after past the prefix", store.TenantQuery{Prefix: base + "b", After: base + "c"}, nil},
		{"after not an id", store.TenantQuery{Prefix: base, After: base + "bab"}, all[slices.Index(all, base+"bb"):]},
		{"non-ASCII prefix", store.TenantQuery{Prefix: base + "é"}, pick("é", "éa")},
		{"prefix past ASCII", store.TenantQuery{Prefix: base + "\u4e16"}, pick("\u4e16")},
		{"limit", store.TenantQuery{Prefix: base, Limit: 3}, all[:3]},
		{"limit and after", store.TenantQuery{Prefix: base, After: all[2], Limit: 2}, all[3:5]},
		{"no match", store.TenantQuery{Prefix: base + "q"}, nil},
		{"unknown", store.TenantQuery{Prefix: f.tenant + "_none"}, nil},
	}
	for _, tc := range tests {
		f.Run(tc.name, func(t *testing.T) {
			got, err := f.s.Tenants(t.Context(), tc.q)
			if err != nil {
				t.Fatalf("Tenants(%+v) = %v, want nil", tc.q, err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Tenants(%+v) = %q, want %q", tc.q, got, tc.want)
			}
		})
	}
	for _, size := range []int{1, 2, 4, len(all), len(all) + 1} {
		f.Run(fmt.Sprintf("pages of %d", size), func(t *testing.T) {
			f := f.with(t)
			q := store.TenantQuery{Prefix: base, Limit: size}
			var got []string
			for page := 0; page <= len(all); page++ {
				ids := f.tenants(q)
				if want := min(size, len(all)-len(got)); len(ids) != want {
					f.Fatalf("Tenants(%+v) page %d = %q, want %d ids", q, page, ids, want)
				}
				got = append(got, ids...)
				if len(ids) < size {
					break
				}
				q.After = ids[len(ids)-1]
			}
			if !slices.Equal(got, all) {
				f.Errorf("Tenants pages of %d = %q, want %q", size, got, all)
			}
		})
	}
	// The whole index, which other tests share: sorted, after the cursor,
	// bounded, and the test's tenants where they sort.
	for _, q := range []store.TenantQuery{
		{After: base, Limit: 3},
		{After: base, Limit: len(all) + 5},
		{Prefix: f.tenant},
		{After: base},
		{After: base, Limit: store.MaxLimit + 1},
	} {
		got := f.tenants(q)
		limit := store.Limit(q.Limit)
		checkPrefix(f, fmt.Sprintf("Tenants(%+v)", q), got, all, limit,
			func(s string) string { return s },
			func(s string) error {
				if s <= q.After || !strings.HasPrefix(s, q.Prefix) {
					return fmt.Errorf("not after %q with prefix %q", q.After, q.Prefix)
				}
				return nil
			},
			func(a, b string) bool { return a <= b })
	}
}

// testTenantsInvalidQuery sends hostile tenant queries: each is refused
// with an Invalid error.
func testTenantsInvalidQuery(f *fixture) {
	tests := []struct {
		name string
		q    store.TenantQuery
	}{
		{"slash in prefix", store.TenantQuery{Prefix: "a/b"}},
		{"slash in after", store.TenantQuery{After: "tenants/x"}},
		{"prefix not UTF-8", store.TenantQuery{Prefix: "t-\xff"}},
		{"after not UTF-8", store.TenantQuery{After: "\xc3"}},
		{"prefix too long", store.TenantQuery{Prefix: strings.Repeat("p", 1501)}},
		{"after too long", store.TenantQuery{After: strings.Repeat("a", 1501)}},
	}
	for _, tc := range tests {
		f.Run(tc.name, func(t *testing.T) {
			f := f.with(t)
			got, err := f.s.Tenants(f.ctx, tc.q)
			f.checkCode(fmt.Sprintf("Tenants(%.40q…)", tc.q.Prefix+tc.q.After), err, fault.Invalid)
			if len(got) != 0 {
				f.Errorf("Tenants of an invalid query = %q, want none", got)
			}
		})
	}
}

// testConcurrentFirstInstances commits the first receipts of several
// instances of a new tenant at once: every transaction commits, and the
// tenant is listed once.
func testConcurrentFirstInstances(f *fixture) {
	var wg sync.WaitGroup
	errs := make([]error, Concurrency)
	for i := range Concurrency {
		wg.Go(func() {
			k := f.key(governor.Entitlement, fmt.Sprint("ent-", i))
			c := decision(newInstance(k), f.id(fmt.Sprint("c", i)), "activation_requested", f.at(time.Duration(i)*time.Second))
			errs[i] = f.commit(c)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			f.Errorf("RunTx of the first receipt of instance %d = %v, want nil", i, err)
		}
	}
	if got, err := f.s.Instances(f.ctx, f.tenant, governor.Entitlement); err != nil || len(got) != Concurrency {
		f.Errorf("Instances(%q) = %d instances, %v; want %d, nil", f.tenant, len(got), err, Concurrency)
	}
	if got := f.tenants(store.TenantQuery{Prefix: f.tenant}); !slices.Equal(got, []string{f.tenant}) {
		f.Errorf("Tenants(prefix %q) = %q, want [%q]", f.tenant, got, f.tenant)
	}
}

func testReceiptsNewest(f *fixture) {
	var offsets []time.Duration
	for i := range 9 {
		// Ties: two receipts a minute.
		offsets = append(offsets, time.Duration(i/2)*time.Minute)
	}
	f.receiptSet(offsets)
	queries := []store.ReceiptQuery{
		{Tenant: f.tenant},
		{Tenant: f.tenant, Domain: governor.Billing},
		{Tenant: f.tenant, Subject: "sub-1"},
		{Tenant: f.tenant, Domain: governor.Billing, Subject: "2026-02"},
		{Tenant: f.tenant, From: f.at(time.Minute), To: f.at(3 * time.Minute)},
		{Tenant: f.tenant, Domain: governor.Billing, From: f.at(time.Minute)},
		{Tenant: f.tenant + "-none"},
	}
	for _, q := range queries {
		f.Run(fmt.Sprintf("%s,%s,%v", q.Domain, q.Subject, !q.From.IsZero()), func(t *testing.T) {
			f := f.with(t)
			oldest, next, err := f.s.Receipts(f.ctx, q)
			if err != nil || next != "" {
				f.Fatalf("Receipts(%+v) = %q, %v; want \"\", nil", q, next, err)
			}
			want := slices.Clone(oldest)
			slices.Reverse(want)
			nq := q
			nq.Newest = true
			got, next, err := f.s.Receipts(f.ctx, nq)
			if err != nil || next != "" {
				f.Fatalf("Receipts(%+v) = %q, %v; want \"\", nil", nq, next, err)
			}
			if !sameReceipts(got, want) {
				f.Errorf("Receipts(%+v) = %v, want %v (oldest first, reversed)", nq, ids(got), ids(want))
			}
		})
	}
}

func testReceiptsNewestPagination(f *fixture) {
	f.receiptSet([]time.Duration{0, 0, 0, time.Second, time.Second, 2 * time.Second, 3 * time.Second})
	oldest, _, err := f.s.Receipts(f.ctx, store.ReceiptQuery{Tenant: f.tenant})
	if err != nil || len(oldest) != 7 {
		f.Fatalf("Receipts(oldest first) = %d receipts, %v; want 7, nil", len(oldest), err)
	}
	newest := slices.Clone(oldest)
	slices.Reverse(newest)
	for _, size := range []int{1, 2, 3, 6, 7, 8} {
		f.Run(fmt.Sprintf("size=%d", size), func(t *testing.T) {
			q := store.ReceiptQuery{Tenant: f.tenant, PageSize: size, Newest: true}
			var got []receipt.Receipt
			for page := 0; page <= len(newest); page++ {
				rs, next, err := f.s.Receipts(t.Context(), q)
				if err != nil {
					t.Fatalf("Receipts(%+v) = %v, want nil", q, err)
				}
				if want := min(size, len(newest)-len(got)); len(rs) != want {
					t.Fatalf("Receipts(%+v) page %d = %d receipts, want %d", q, page, len(rs), want)
				}
				got = append(got, rs...)
				if next == "" {
					break
				}
				q.PageToken = next
			}
			if !sameReceipts(got, newest) {
				t.Errorf("Receipts pages of %d, newest first = %v, want %v", size, ids(got), ids(newest))
			}
		})
	}
	// A token names a receipt: in the other order the page starts after
	// that receipt in that order.
	_, token, err := f.s.Receipts(f.ctx, store.ReceiptQuery{Tenant: f.tenant, PageSize: 4})
	if err != nil || token == "" {
		f.Fatalf("Receipts(page size 4) = %q, %v; want a token, nil", token, err)
	}
	got, next, err := f.s.Receipts(f.ctx, store.ReceiptQuery{Tenant: f.tenant, PageToken: token, Newest: true})
	if err != nil || next != "" || !sameReceipts(got, newest[len(newest)-3:]) {
		f.Errorf("Receipts(newest first after the 4th oldest) = %v, %q, %v; want %v, \"\", nil", ids(got), next, err, ids(newest[len(newest)-3:]))
	}
	_, _, err = f.s.Receipts(f.ctx, store.ReceiptQuery{Tenant: f.tenant + "-b", PageToken: token, Newest: true})
	f.checkCode("Receipts(newest first, token of another tenant)", err, fault.Invalid)
}

// stepCorrelated commits a decision on *inst whose receipt carries
// correlation id corr.
func (f *fixture) stepCorrelated(inst *governor.Instance, exec, corr string, at time.Time) receipt.Receipt {
	f.Helper()
	c := decision(*inst, exec, "open", at)
	c.Receipt.CorrelationID = corr
	c.Receipt.Hash = c.Receipt.ComputeHash()
	c.Instance.LastHash = c.Receipt.Hash
	c.Dedup.ReceiptHash = c.Receipt.Hash
	f.mustCommit(c)
	*inst = c.Instance
	return c.Receipt
}

func testReceiptsByCorrelation(f *fixture) {
	cascade, other := f.id("cascade"), f.id("other")
	a := newInstance(f.key(governor.Billing, "2026-01"))
	b := newInstance(f.key(governor.Subscription, "sub-1"))
	c := newInstance(f.key(governor.Entitlement, "ent-1"))
	var want []receipt.Receipt
	// Written out of order, with a tie in decided_at across instances.
	want = append(want, f.stepCorrelated(&b, f.id("1"), cascade, f.at(0)))
	want = append(want, f.stepCorrelated(&a, f.id("2"), cascade, f.at(0)))
	want = append(want, f.stepCorrelated(&a, f.id("3"), cascade, f.at(3*time.Second)))
	want = append(want, f.stepCorrelated(&c, f.id("4"), cascade, f.at(time.Second)))
	otherReceipt := f.stepCorrelated(&c, f.id("5"), other, f.at(2*time.Second))
	want = append(want, f.stepCorrelated(&b, f.id("6"), cascade, f.at(2*time.Second)))
	// The same correlation id in another tenant never shows.
	otherTenant := f.tenant + "-b"
	o := newInstance(governor.Key{Tenant: otherTenant, Domain: governor.Billing, Subject: "2026-01"})
	foreign := f.stepCorrelated(&o, f.id("7"), cascade, f.at(0))
	slices.SortFunc(want, func(x, y receipt.Receipt) int {
		tx, _ := time.Parse(time.RFC3339Nano, x.DecidedAt)
		ty, _ := time.Parse(time.RFC3339Nano, y.DecidedAt)
		return cmp.Or(tx.Compare(ty), strings.Compare(x.Domain+":"+x.Subject, y.Domain+":"+y.Subject), cmp.Compare(x.Seq, y.Seq))
	})
	tests := []struct {
		name         string
		tenant, corr string
		limit        int
		want         []receipt.Receipt
	}{
		{"cascade", f.tenant, cascade, 0, want},
		{"limit", f.tenant, cascade, 2, want[:2]},
		{"limit above the count", f.tenant, cascade, 100, want},
		{"limit above the cap", f.tenant, cascade, store.MaxLimit + 1, want},
		{"other cascade", f.tenant, other, 0, []receipt.Receipt{otherReceipt}},
		{"other tenant", otherTenant, cascade, 0, []receipt.Receipt{foreign}},
		{"unknown cascade", f.tenant, f.id("none"), 0, nil},
		{"unknown tenant", f.tenant + "-none", cascade, 0, nil},
	}
	for _, tc := range tests {
		f.Run(tc.name, func(t *testing.T) {
			got, err := f.s.ReceiptsByCorrelation(t.Context(), tc.tenant, tc.corr, tc.limit)
			if err != nil {
				t.Fatalf("ReceiptsByCorrelation(%q, %q, %d) = %v, want nil", tc.tenant, tc.corr, tc.limit, err)
			}
			if !sameReceipts(got, tc.want) {
				t.Errorf("ReceiptsByCorrelation(%q, %q, %d) = %v, want %v", tc.tenant, tc.corr, tc.limit, ids(got), ids(tc.want))
			}
		})
	}
	invalid := []struct {
		name, tenant, corr string
	}{
		{"no tenant", "", cascade},
		{"slash in tenant", "a/b", cascade},
		{"no correlation id", f.tenant, ""},
		{"correlation id not UTF-8", f.tenant, "c-\xff"},
		{"correlation id too long", f.tenant, strings.Repeat("c", 1501)},
	}
	for _, tc := range invalid {
		f.Run(tc.name, func(t *testing.T) {
			f := f.with(t)
			_, err := f.s.ReceiptsByCorrelation(f.ctx, tc.tenant, tc.corr, 0)
			f.checkCode(fmt.Sprintf("ReceiptsByCorrelation(%q, %.20q…)", tc.tenant, tc.corr), err, fault.Invalid)
		})
	}
}
