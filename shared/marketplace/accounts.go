package marketplace

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
)

// MaxListLimit bounds the links one Accounts.List call returns; a larger
// limit is lowered to it.
const MaxListLimit = 1000

// MaxAccountLen bounds a Procurement account id, in characters.
const MaxAccountLen = 128

// ValidAccount returns an Invalid *fault.Error unless id is a
// Procurement account id as Autonomics accepts it: 1–128 characters of
// [A-Za-z0-9._-], not "." or "..", not starting with "__" (ids that are
// not valid document ids either).
func ValidAccount(id string) error {
	if r := idReason(id); r != "" {
		return fault.Errorf(fault.Invalid, "marketplace.ValidAccount", "account id %s: %s", quote(id), r)
	}
	return nil
}

// ValidSource returns an Invalid *fault.Error unless s is one of
// LinkedBySignup, LinkedByNotification and LinkedByOperator.
func ValidSource(s string) error {
	switch s {
	case LinkedBySignup, LinkedByNotification, LinkedByOperator:
		return nil
	}
	return fault.Errorf(fault.Invalid, "marketplace.ValidSource", "link source %s: want %s, %s or %s",
		quote(s), LinkedBySignup, LinkedByNotification, LinkedByOperator)
}

// ValidLink checks every field of a link but CreatedAt.
func ValidLink(l Link) error {
	if err := ValidAccount(l.Account); err != nil {
		return err
	}
	if err := event.ValidTenant(l.Tenant); err != nil {
		return err
	}
	return ValidSource(l.Source)
}

// ValidListArgs checks the arguments of Accounts.List and returns the
// limit to use.
func ValidListArgs(after string, limit int) (int, error) {
	const op = "marketplace.List"
	if after != "" {
		if err := ValidAccount(after); err != nil {
			return 0, fault.Errorf(fault.Invalid, op, "after: %s", fault.ErrorMessage(err))
		}
	}
	if limit <= 0 {
		return 0, fault.Errorf(fault.Invalid, op, "limit %d: must be positive", limit)
	}
	return min(limit, MaxListLimit), nil
}

// idReason says what is wrong with an id of the tenant id syntax, or ""
// when it is valid.
func idReason(s string) string {
	if len(s) == 0 || len(s) > MaxAccountLen {
		return fmt.Sprintf("must be 1-%d characters of [A-Za-z0-9._-], got %d bytes", MaxAccountLen, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "must be 1-128 characters of [A-Za-z0-9._-]"
		}
	}
	if s == "." || s == ".." {
		return `must not be "." or ".."`
	}
	if len(s) >= 2 && s[:2] == "__" {
		return `must not start with "__"`
	}
	return ""
}

// quote quotes s for an error message, truncated to 64 bytes.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strconv.Quote(s)
}

// MemAccounts is an Accounts in memory, for tests and the local stack. It
// is safe for concurrent use.
type MemAccounts struct {
	mu        sync.Mutex
	byAccount map[string]Link
	byTenant  map[string]string
	// Now stamps new links; time.Now when nil.
	Now func() time.Time
}

var _ Accounts = (*MemAccounts)(nil)

// NewMemAccounts returns an empty MemAccounts.
func NewMemAccounts() *MemAccounts {
	return &MemAccounts{byAccount: map[string]Link{}, byTenant: map[string]string{}}
}

func (m *MemAccounts) now() time.Time {
	if m.Now != nil {
		return m.Now().UTC()
	}
	return time.Now().UTC()
}

// Link returns the link of account, creating it with DefaultTenant.
func (m *MemAccounts) Link(ctx context.Context, account, source string) (Link, error) {
	if err := ValidAccount(account); err != nil {
		return Link{}, err
	}
	if err := ValidSource(source); err != nil {
		return Link{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.byAccount[account]; ok {
		return l, nil
	}
	l := Link{Account: account, Tenant: DefaultTenant(account), Source: source, CreatedAt: m.now()}
	if err := m.put(l); err != nil {
		return Link{}, err
	}
	return l, nil
}

// Put creates l, or does nothing when it exists as given.
func (m *MemAccounts) Put(ctx context.Context, l Link) error {
	if err := ValidLink(l); err != nil {
		return err
	}
	if l.CreatedAt.IsZero() {
		l.CreatedAt = m.now()
	}
	l.CreatedAt = l.CreatedAt.UTC()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.put(l)
}

// put stores l after the conflict checks; m.mu is held.
func (m *MemAccounts) put(l Link) error {
	if err := CheckConflict(l, m.byAccount[l.Account], m.byTenant[l.Tenant]); err != nil {
		return err
	}
	if _, ok := m.byAccount[l.Account]; ok {
		return nil
	}
	m.byAccount[l.Account] = l
	m.byTenant[l.Tenant] = l.Account
	return nil
}

// CheckConflict decides a Put of l given the link its account already has
// (zero when none) and the account its tenant is already tied to ("" when
// none): nil when l may be written or already exists as given, a Conflict
// otherwise. Adapters share it so that they decide alike.
func CheckConflict(l Link, ofAccount Link, tenantAccount string) error {
	const op = "marketplace.Put"
	if ofAccount.Account != "" && ofAccount.Tenant != l.Tenant {
		return fault.Errorf(fault.Conflict, op, "account %s is already linked to tenant %s", quote(l.Account), quote(ofAccount.Tenant))
	}
	if tenantAccount != "" && tenantAccount != l.Account {
		return fault.Errorf(fault.Conflict, op, "tenant %s is already linked to account %s", quote(l.Tenant), quote(tenantAccount))
	}
	return nil
}

// ByAccount returns the link of account.
func (m *MemAccounts) ByAccount(ctx context.Context, account string) (Link, error) {
	if err := ValidAccount(account); err != nil {
		return Link{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.byAccount[account]; ok {
		return l, nil
	}
	return Link{}, fault.Errorf(fault.NotFound, "marketplace.ByAccount", "account %s is not linked to a tenant", quote(account))
}

// ByTenant returns the link of tenant.
func (m *MemAccounts) ByTenant(ctx context.Context, tenant string) (Link, error) {
	if err := event.ValidTenant(tenant); err != nil {
		return Link{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.byTenant[tenant]; ok {
		return m.byAccount[a], nil
	}
	return Link{}, fault.Errorf(fault.NotFound, "marketplace.ByTenant", "tenant %s is not linked to a Marketplace account", quote(tenant))
}

// List returns up to limit links after the account id after.
func (m *MemAccounts) List(ctx context.Context, after string, limit int) ([]Link, error) {
	limit, err := ValidListArgs(after, limit)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.byAccount))
	for a := range m.byAccount {
		if a > after {
			ids = append(ids, a)
		}
	}
	sort.Strings(ids)
	if len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]Link, len(ids))
	for i, a := range ids {
		out[i] = m.byAccount[a]
	}
	return out, nil
}
