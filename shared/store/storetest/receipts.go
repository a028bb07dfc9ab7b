package storetest

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/receipt"
	"github.com/autonomics/autonomics/shared/store"
)

func testChain(f *fixture) {
	k := f.key(governor.Entitlement, "ent-1")
	inst := newInstance(k)
	var written []receipt.Receipt
	for i, to := range []governor.State{"activation_requested", "active", "suspended", "active", "cancelled"} {
		emits := []governor.Emit{{Kind: governor.KindActuate, Type: "marketplace.approve_entitlement", Domain: k.Domain, Subject: k.Subject}}
		c := f.step(&inst, f.id(fmt.Sprint("e", i)), to, f.at(time.Duration(i)*time.Second), emits[:i%2]...)
		written = append(written, c.Receipt)
	}
	// Another instance of the same tenant and domain whose chain must not
	// mix in.
	other := newInstance(f.key(governor.Entitlement, "ent-10"))
	f.step(&other, f.id("o1"), "activation_requested", f.at(time.Minute))

	tests := []struct {
		after int64
		limit int
		want  []receipt.Receipt
	}{
		{0, 0, written},
		{0, 100, written},
		{0, 2, written[:2]},
		{2, 0, written[2:]},
		{1, 2, written[1:3]},
		{4, 1, written[4:]},
		{5, 0, nil},
		{9, 0, nil},
	}
	for _, tc := range tests {
		f.Run(fmt.Sprintf("after=%d,limit=%d", tc.after, tc.limit), func(t *testing.T) {
			got, err := f.s.Chain(t.Context(), k, tc.after, tc.limit)
			if err != nil {
				t.Fatalf("Chain(%s, %d, %d) = %v, want nil", k, tc.after, tc.limit, err)
			}
			if !sameReceipts(got, tc.want) {
				t.Errorf("Chain(%s, %d, %d) = %v, want %v", k, tc.after, tc.limit, ids(got), ids(tc.want))
			}
		})
	}
	if err := receipt.Verify(f.chain(k)); err != nil {
		f.Errorf("Verify(Chain(%s)) = %v, want nil", k, err)
	}
	if got := f.chain(f.key(governor.Entitlement, "ent-none")); len(got) != 0 {
		f.Errorf("Chain of a missing instance = %v, want none", ids(got))
	}
}

func testReceiptRoundTrip(f *fixture) {
	k := f.key(governor.CustomerAccount, governor.DefaultSubject)
	inst := newInstance(k)
	c := decision(inst, f.id("evt \"quoted\" é ✓ \u2028 <&>"), "pending_verification", f.at(0).Add(123456789*time.Nanosecond),
		governor.Emit{Kind: governor.KindActuate, Type: "marketplace.approve_account", Domain: k.Domain, Subject: k.Subject},
		governor.Emit{Kind: governor.KindEvent, Type: "autonomics.entitlement.account_activated", Domain: governor.Entitlement, Subject: "*"},
	)
	c.Receipt.Outcome = string(governor.Rejected)
	c.Receipt.Reason = "guard: line1\nline2\ttab \\ back"
	c.Receipt.Hash = c.Receipt.ComputeHash()
	c.Instance.LastHash = c.Receipt.Hash
	c.Dedup.ReceiptHash = c.Receipt.Hash
	f.mustCommit(c)

	got := f.chain(k)
	if !sameReceipts(got, []receipt.Receipt{c.Receipt}) {
		f.Fatalf("Chain(%s) = %v, want %s", k, got, c.Receipt.JSON())
	}
	if h := got[0].ComputeHash(); h != got[0].Hash {
		f.Errorf("ComputeHash() of the stored receipt = %s, want %s", h, got[0].Hash)
	}
	// The returned receipt is the caller's.
	got[0].Actions[0].ID = "mutated"
	if again := f.chain(k); !sameReceipts(again, []receipt.Receipt{c.Receipt}) {
		f.Errorf("Chain(%s) after mutating a returned receipt = %s, want %s", k, again[0].JSON(), c.Receipt.JSON())
	}
}

// receiptSet writes receipts on three instances of the test's tenant, at
// the given offsets from the base time in turn, and returns them in
// writing order.
func (f *fixture) receiptSet(offsets []time.Duration) []receipt.Receipt {
	f.Helper()
	insts := []governor.Instance{
		newInstance(f.key(governor.Billing, "2026-01")),
		newInstance(f.key(governor.Billing, "2026-02")),
		newInstance(f.key(governor.Subscription, "sub-1")),
	}
	var out []receipt.Receipt
	for i, d := range offsets {
		inst := &insts[i%len(insts)]
		c := f.step(inst, f.id(fmt.Sprint("r", i)), "open", f.at(d))
		out = append(out, c.Receipt)
	}
	return out
}

func testReceipts(f *fixture) {
	var offsets []time.Duration
	for i := range 9 {
		offsets = append(offsets, time.Duration(i)*time.Minute)
	}
	all := f.receiptSet(offsets)
	// A receipt of another tenant at the same times must never show.
	otherTenant := f.tenant + "-b"
	o := newInstance(governor.Key{Tenant: otherTenant, Domain: governor.Billing, Subject: "2026-01"})
	f.step(&o, f.id("other"), "open", f.at(4*time.Minute))

	match := func(domain, subject string, from, to time.Duration) []receipt.Receipt {
		var out []receipt.Receipt
		for i, r := range all {
			if (domain == "" || r.Domain == domain) && (subject == "" || r.Subject == subject) &&
				(from < 0 || offsets[i] >= from) && (to < 0 || offsets[i] < to) {
				out = append(out, r)
			}
		}
		return out
	}
	open := time.Duration(-1)
	tests := []struct {
		name     string
		q        store.ReceiptQuery
		from, to time.Duration
		want     []receipt.Receipt
	}{
		{"tenant", store.ReceiptQuery{Tenant: f.tenant}, open, open, all},
		{"domain", store.ReceiptQuery{Tenant: f.tenant, Domain: governor.Billing}, open, open, match("billing", "", open, open)},
		{"domain and subject", store.ReceiptQuery{Tenant: f.tenant, Domain: governor.Billing, Subject: "2026-02"}, open, open, match("billing", "2026-02", open, open)},
		{"subject", store.ReceiptQuery{Tenant: f.tenant, Subject: "sub-1"}, open, open, match("", "sub-1", open, open)},
		{"from", store.ReceiptQuery{Tenant: f.tenant}, 3 * time.Minute, open, match("", "", 3*time.Minute, open)},
		{"to", store.ReceiptQuery{Tenant: f.tenant}, open, 3 * time.Minute, match("", "", open, 3*time.Minute)},
		{"domain from to", store.ReceiptQuery{Tenant: f.tenant, Domain: governor.Billing}, 2 * time.Minute, 7 * time.Minute, match("billing", "", 2*time.Minute, 7*time.Minute)},
		{"empty range", store.ReceiptQuery{Tenant: f.tenant}, 4 * time.Minute, 4 * time.Minute, nil},
		{"after the last", store.ReceiptQuery{Tenant: f.tenant}, time.Hour, open, nil},
		{"domain without receipts", store.ReceiptQuery{Tenant: f.tenant, Domain: governor.QuotaSLA}, open, open, nil},
		{"other tenant", store.ReceiptQuery{Tenant: otherTenant}, open, open, f.chain(o.Key)},
		{"unknown tenant", store.ReceiptQuery{Tenant: f.tenant + "-none"}, open, open, nil},
	}
	for _, tc := range tests {
		f.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.PageSize = 100
			if tc.from >= 0 {
				q.From = f.at(tc.from)
			}
			if tc.to >= 0 {
				q.To = f.at(tc.to)
			}
			got, next, err := f.s.Receipts(t.Context(), q)
			if err != nil {
				t.Fatalf("Receipts(%+v) = %v, want nil", q, err)
			}
			if !sameReceipts(got, tc.want) || next != "" {
				t.Errorf("Receipts(%+v) = %v, %q; want %v, \"\"", q, ids(got), next, ids(tc.want))
			}
		})
	}
}

func testReceiptsPagination(f *fixture) {
	// Ties in decided_at across instances: pages must still neither repeat
	// nor skip a receipt.
	all := f.receiptSet([]time.Duration{0, 0, 0, time.Second, time.Second, 2 * time.Second, 3 * time.Second})
	full, next, err := f.s.Receipts(f.ctx, store.ReceiptQuery{Tenant: f.tenant})
	if err != nil || next != "" || len(full) != len(all) {
		f.Fatalf("Receipts(default page size) = %d receipts, %q, %v; want %d, \"\", nil", len(full), next, err, len(all))
	}
	for i := 1; i < len(full); i++ {
		if full[i].DecidedAt < full[i-1].DecidedAt {
			f.Errorf("Receipts[%d].decided_at = %s before [%d] = %s", i, full[i].DecidedAt, i-1, full[i-1].DecidedAt)
		}
	}
	seen := map[string]bool{}
	for _, id := range ids(full) {
		seen[id] = true
	}
	for _, id := range ids(all) {
		if !seen[id] {
			f.Errorf("Receipts omits %s", id)
		}
	}
	billing := func(rs []receipt.Receipt) []receipt.Receipt {
		var out []receipt.Receipt
		for _, r := range rs {
			if r.Domain == string(governor.Billing) {
				out = append(out, r)
			}
		}
		return out
	}
	tests := []struct {
		domain governor.Domain
		size   int
		want   []receipt.Receipt
	}{
		{"", 1, full},
		{"", 2, full},
		{"", 3, full},
		{"", 6, full},
		{"", 7, full},
		{"", 8, full},
		{governor.Billing, 2, billing(full)},
		{governor.Billing, 5, billing(full)},
	}
	for _, tc := range tests {
		f.Run(fmt.Sprintf("domain=%s,size=%d", tc.domain, tc.size), func(t *testing.T) {
			q := store.ReceiptQuery{Tenant: f.tenant, Domain: tc.domain, PageSize: tc.size}
			var got []receipt.Receipt
			for page := 0; ; page++ {
				rs, next, err := f.s.Receipts(t.Context(), q)
				if err != nil {
					t.Fatalf("Receipts(%+v) = %v, want nil", q, err)
				}
				got = append(got, rs...)
				wantLen := min(tc.size, len(tc.want)-page*tc.size)
				if len(rs) != wantLen {
					t.Fatalf("Receipts(%+v) page %d = %d receipts, want %d", q, page, len(rs), wantLen)
				}
				if next == "" {
					break
				}
				if len(got) >= len(tc.want) {
					t.Fatalf("Receipts(%+v) page %d has token %q after the last receipt", q, page, next)
				}
				q.PageToken = next
			}
			if !sameReceipts(got, tc.want) {
				t.Errorf("Receipts pages of %d = %v, want %v", tc.size, ids(got), ids(tc.want))
			}
		})
	}
}

func testReceiptsInvalidQuery(f *fixture) {
	f.receiptSet([]time.Duration{0, time.Second, 2 * time.Second})
	_, token, err := f.s.Receipts(f.ctx, store.ReceiptQuery{Tenant: f.tenant, PageSize: 1})
	if err != nil || token == "" {
		f.Fatalf("Receipts(page size 1) = %q, %v; want a token, nil", token, err)
	}
	tests := []struct {
		name string
		q    store.ReceiptQuery
	}{
		{"no tenant", store.ReceiptQuery{}},
		{"slash in tenant", store.ReceiptQuery{Tenant: "a/b"}},
		{"from after to", store.ReceiptQuery{Tenant: f.tenant, From: f.at(time.Hour), To: f.at(0)}},
		{"garbage token", store.ReceiptQuery{Tenant: f.tenant, PageToken: "%%%not-a-token"}},
		{"unknown token", store.ReceiptQuery{Tenant: f.tenant, PageToken: base64.RawURLEncoding.EncodeToString(
			fmt.Appendf(nil, "tenants/%s/instances/billing:nope/receipts/000000000001", f.tenant))}},
		{"token of another tenant", store.ReceiptQuery{Tenant: f.tenant + "-b", PageToken: token}},
	}
	for _, tc := range tests {
		f.Run(tc.name, func(t *testing.T) {
			f := f.with(t)
			_, _, err := f.s.Receipts(f.ctx, tc.q)
			f.checkCode(fmt.Sprintf("Receipts(%+v)", tc.q), err, fault.Invalid)
		})
	}
}

func testReceiptsByExecution(f *fixture) {
	broadcast := f.id("broadcast")
	otherTenant := f.tenant + "-b"
	keys := []governor.Key{
		f.key(governor.Subscription, "sub-2"),
		{Tenant: otherTenant, Domain: governor.Entitlement, Subject: "ent-1"},
		f.key(governor.Entitlement, "ent-2"),
		f.key(governor.Entitlement, "ent-1"),
	}
	var want []receipt.Receipt
	for i, k := range keys {
		inst := newInstance(k)
		// A first receipt of another event, so that seqs differ.
		if i%2 == 0 {
			f.step(&inst, f.id(fmt.Sprint("first", i)), "active", f.at(0))
		}
		c := f.step(&inst, broadcast, "suspended", f.at(time.Second))
		want = append(want, c.Receipt)
	}
	slices.SortFunc(want, func(a, b receipt.Receipt) int {
		return cmp.Or(strings.Compare(a.TenantID, b.TenantID), strings.Compare(a.Domain, b.Domain),
			strings.Compare(a.Subject, b.Subject), cmp.Compare(a.Seq, b.Seq))
	})
	tests := []struct {
		id   string
		want []receipt.Receipt
	}{
		{broadcast, want},
		{f.id("first0"), f.chain(keys[0])[:1]},
		{f.id("unknown"), nil},
	}
	_, err := f.s.ReceiptsByExecution(f.ctx, "")
	f.checkCode(`ReceiptsByExecution("")`, err, fault.Invalid)
	for _, tc := range tests {
		f.Run(tc.id, func(t *testing.T) {
			got, err := f.s.ReceiptsByExecution(t.Context(), tc.id)
			if err != nil {
				t.Fatalf("ReceiptsByExecution(%q) = %v, want nil", tc.id, err)
			}
			if !sameReceipts(got, tc.want) {
				t.Errorf("ReceiptsByExecution(%q) = %v, want %v", tc.id, ids(got), ids(tc.want))
			}
		})
	}
}
