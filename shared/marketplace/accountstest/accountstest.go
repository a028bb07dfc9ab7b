// Package accountstest is the conformance suite of marketplace.Accounts:
// every adapter (the memory one and the Firestore one) runs Run and so
// behaves alike.
package accountstest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/marketplace"
)

// Run runs the conformance suite; newAccounts returns an empty Accounts
// of its own at every call.
func Run(t *testing.T, newAccounts func() marketplace.Accounts) {
	ctx := context.Background()
	t.Run("LinkIsIdempotent", func(t *testing.T) {
		a := newAccounts()
		first, err := a.Link(ctx, "E-1234-5678", marketplace.LinkedByNotification)
		if err != nil {
			t.Fatal(err)
		}
		if first.Tenant != marketplace.DefaultTenant("E-1234-5678") || first.Source != marketplace.LinkedByNotification || first.CreatedAt.IsZero() {
			t.Fatalf("Link = %+v, want tenant %s, source notification and a creation time", first, marketplace.DefaultTenant("E-1234-5678"))
		}
		again, err := a.Link(ctx, "E-1234-5678", marketplace.LinkedBySignup)
		if err != nil {
			t.Fatal(err)
		}
		if !sameLink(again, first) {
			t.Errorf("second Link = %+v, want the first one unchanged %+v", again, first)
		}
		got, err := a.ByAccount(ctx, "E-1234-5678")
		if err != nil || !sameLink(got, first) {
			t.Errorf("ByAccount = %+v, %v; want %+v", got, err, first)
		}
		got, err = a.ByTenant(ctx, first.Tenant)
		if err != nil || !sameLink(got, first) {
			t.Errorf("ByTenant = %+v, %v; want %+v", got, err, first)
		}
	})
	t.Run("ConcurrentLinksAgree", func(t *testing.T) {
		a := newAccounts()
		var wg sync.WaitGroup
		links := make([]marketplace.Link, 8)
		errs := make([]error, 8)
		for i := range links {
			wg.Add(1)
			go func() {
				defer wg.Done()
				links[i], errs[i] = a.Link(ctx, "E-RACE", marketplace.LinkedByNotification)
			}()
		}
		wg.Wait()
		for i := range links {
			if errs[i] != nil {
				t.Fatalf("Link %d: %v", i, errs[i])
			}
			if !sameLink(links[i], links[0]) {
				t.Errorf("Link %d = %+v, Link 0 = %+v", i, links[i], links[0])
			}
		}
	})
	t.Run("PutAndPutAgain", func(t *testing.T) {
		a := newAccounts()
		l := marketplace.Link{Account: "E-OP", Tenant: "acme", Source: marketplace.LinkedByOperator, CreatedAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
		if err := a.Put(ctx, l); err != nil {
			t.Fatal(err)
		}
		if err := a.Put(ctx, l); err != nil {
			t.Errorf("putting the same link again = %v, want nil", err)
		}
		got, err := a.ByTenant(ctx, "acme")
		if err != nil || !sameLink(got, l) {
			t.Errorf("ByTenant(acme) = %+v, %v; want %+v", got, err, l)
		}
		linked, err := a.Link(ctx, "E-OP", marketplace.LinkedByNotification)
		if err != nil || linked.Tenant != "acme" {
			t.Errorf("Link after Put = %+v, %v; want tenant acme", linked, err)
		}
	})
	t.Run("PutConflictsBothWays", func(t *testing.T) {
		a := newAccounts()
		if err := a.Put(ctx, marketplace.Link{Account: "E-1", Tenant: "acme", Source: marketplace.LinkedByOperator}); err != nil {
			t.Fatal(err)
		}
		for name, l := range map[string]marketplace.Link{
			"account tied to another tenant": {Account: "E-1", Tenant: "initech", Source: marketplace.LinkedByOperator},
			"tenant tied to another account": {Account: "E-2", Tenant: "acme", Source: marketplace.LinkedByOperator},
		} {
			if err := a.Put(ctx, l); fault.ErrorCode(err) != fault.Conflict {
				t.Errorf("%s: Put(%+v) = %v, want a conflict", name, l, err)
			}
		}
		if _, err := a.ByAccount(ctx, "E-2"); fault.ErrorCode(err) != fault.NotFound {
			t.Errorf("a refused Put wrote account E-2: ByAccount = %v", err)
		}
		if l, err := a.ByTenant(ctx, "initech"); fault.ErrorCode(err) != fault.NotFound {
			t.Errorf("a refused Put wrote tenant initech: ByTenant = %+v, %v", l, err)
		}
	})
	t.Run("LinkConflictsWithATakenTenant", func(t *testing.T) {
		a := newAccounts()
		if err := a.Put(ctx, marketplace.Link{Account: "E-OTHER", Tenant: marketplace.DefaultTenant("E-NEW"), Source: marketplace.LinkedByOperator}); err != nil {
			t.Fatal(err)
		}
		if l, err := a.Link(ctx, "E-NEW", marketplace.LinkedByNotification); fault.ErrorCode(err) != fault.Conflict {
			t.Errorf("Link onto a tenant tied to another account = %+v, %v; want a conflict", l, err)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		a := newAccounts()
		if _, err := a.ByAccount(ctx, "E-NONE"); fault.ErrorCode(err) != fault.NotFound {
			t.Errorf("ByAccount(missing) = %v, want not_found", err)
		}
		if _, err := a.ByTenant(ctx, "nobody"); fault.ErrorCode(err) != fault.NotFound {
			t.Errorf("ByTenant(missing) = %v, want not_found", err)
		}
	})
	t.Run("ListPages", func(t *testing.T) {
		a := newAccounts()
		var want []string
		for i := range 7 {
			id := fmt.Sprintf("E-%02d", i)
			want = append(want, id)
			if _, err := a.Link(ctx, id, marketplace.LinkedBySignup); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("List does not end")
			}
			page, err := a.List(ctx, after, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 3 {
				t.Fatalf("List(limit 3) returned %d links", len(page))
			}
			if len(page) == 0 {
				break
			}
			for _, l := range page {
				got = append(got, l.Account)
			}
			after = page[len(page)-1].Account
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("paged List = %v, want %v", got, want)
		}
	})
	t.Run("InvalidIdsAreRefused", func(t *testing.T) {
		a := newAccounts()
		bad := []string{"", ".", "..", "__x", "a/b", "a b", "é", strings.Repeat("a", 129)}
		for _, id := range bad {
			if _, err := a.Link(ctx, id, marketplace.LinkedBySignup); fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("Link(%q) = %v, want invalid", id, err)
			}
			if _, err := a.ByAccount(ctx, id); fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("ByAccount(%q) = %v, want invalid", id, err)
			}
			if err := a.Put(ctx, marketplace.Link{Account: id, Tenant: "acme", Source: marketplace.LinkedByOperator}); fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("Put(account %q) = %v, want invalid", id, err)
			}
			if err := a.Put(ctx, marketplace.Link{Account: "E-1", Tenant: id, Source: marketplace.LinkedByOperator}); fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("Put(tenant %q) = %v, want invalid", id, err)
			}
			if _, err := a.ByTenant(ctx, id); fault.ErrorCode(err) != fault.Invalid {
				t.Errorf("ByTenant(%q) = %v, want invalid", id, err)
			}
		}
		if _, err := a.Link(ctx, "E-1", "hearsay"); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("Link with source hearsay = %v, want invalid", err)
		}
		if _, err := a.List(ctx, "", 0); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("List(limit 0) = %v, want invalid", err)
		}
		if _, err := a.List(ctx, "a/b", 10); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("List(after a/b) = %v, want invalid", err)
		}
		if page, err := a.List(ctx, "", 10); err != nil || len(page) != 0 {
			t.Errorf("refused calls wrote links: List = %v, %v", page, err)
		}
	})
}

// sameLink compares links, their times to the millisecond (what every
// store keeps).
func sameLink(a, b marketplace.Link) bool {
	return a.Account == b.Account && a.Tenant == b.Tenant && a.Source == b.Source &&
		a.CreatedAt.Truncate(time.Millisecond).Equal(b.CreatedAt.Truncate(time.Millisecond))
}
