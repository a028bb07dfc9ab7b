package marketplace

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/autonomics/autonomics/shared/event"
)

// Sources of a Link: who created it.
const (
	LinkedBySignup       = "signup"
	LinkedByNotification = "notification"
	LinkedByOperator     = "operator"
)

// TenantPrefix starts the tenant id DefaultTenant derives from a
// Procurement account id.
const TenantPrefix = "mp-"

// Link ties one Procurement account to one Autonomics tenant, both ways:
// an account has at most one tenant and a tenant at most one account.
type Link struct {
	// Account is the Procurement account id (the last segment of
	// providers/{provider}/accounts/{account}).
	Account string `json:"account"`
	// Tenant is the Autonomics tenant id the account's events go to.
	Tenant string `json:"tenant"`
	// Source says who created the link: LinkedBySignup,
	// LinkedByNotification or LinkedByOperator.
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
}

// Accounts is the account-to-tenant mapping the Marketplace components
// keep. Every method returns *fault.Error values: NotFound when there
// is no link, Conflict when a link would tie an account or a tenant
// twice, Invalid for ids that are not ids, Unavailable for transient
// storage faults.
type Accounts interface {
	// Link returns the link of account, creating it with
	// DefaultTenant(account) and source when there is none. It is
	// idempotent: an existing link is returned unchanged.
	Link(ctx context.Context, account, source string) (Link, error)
	// Put creates l as given (an operator tying an account to an existing
	// tenant). Putting the same link again is not an error; tying the
	// account or the tenant to another is a Conflict.
	Put(ctx context.Context, l Link) error
	// ByAccount returns the link of a Procurement account id.
	ByAccount(ctx context.Context, account string) (Link, error)
	// ByTenant returns the link of a tenant.
	ByTenant(ctx context.Context, tenant string) (Link, error)
	// List returns up to limit links whose account id sorts after after,
	// in account id order.
	List(ctx context.Context, after string, limit int) ([]Link, error)
}

// DefaultTenant is the tenant id of a Procurement account that was not
// tied to a tenant beforehand: "mp-" followed by the account id when that
// is a valid tenant id, or by the first 32 hex digits of the account id's
// SHA-256 otherwise.
func DefaultTenant(account string) string {
	if t := TenantPrefix + account; event.ValidTenant(t) == nil {
		return t
	}
	sum := sha256.Sum256([]byte(account))
	return TenantPrefix + hex.EncodeToString(sum[:16])
}
