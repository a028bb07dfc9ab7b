// Package fsmarketplace is the Firestore marketplace.Accounts: the links
// between Procurement accounts and tenants. It lives in the monitor's
// database (platform.Clients.MonitorFirestore), apart from governor state.
//
// Documents, under marketplace/{namespace}:
//
//	accounts/{account}
//	  account, tenant, source    string
//	  created_at                 timestamp
//	tenants/{tenant}
//	  account, tenant, source    string
//	  created_at                 timestamp
//
// Both documents of a link are written in one transaction, so that an
// account and a tenant are each tied at most once. List orders accounts by
// document id, which needs no composite index.
package fsmarketplace

import (
	"context"
	"regexp"
	"time"

	fs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/firestore/fserr"
	"github.com/autonomics/autonomics/shared/marketplace"
)

// Collection names.
const (
	ColRoot     = "marketplace"
	ColAccounts = "accounts"
	ColTenants  = "tenants"
)

// Defaults of Options.
const (
	DefaultNamespace   = "default"
	DefaultMaxAttempts = 30
)

// namespacePattern is the syntax of a namespace.
var namespacePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Options configure an Accounts.
type Options struct {
	// Namespace separates deployments sharing a database;
	// DefaultNamespace when empty.
	Namespace string
	// MaxAttempts bounds transaction attempts on contention.
	MaxAttempts int
	// Now stamps new links; time.Now when nil.
	Now func() time.Time
}

// Accounts is the Firestore marketplace.Accounts. It is safe for
// concurrent use.
type Accounts struct {
	c    *fs.Client
	root *fs.DocumentRef
	o    Options
}

var _ marketplace.Accounts = (*Accounts)(nil)

// New returns an Accounts using client, the client of the monitor's
// database.
func New(client *fs.Client, o Options) (*Accounts, error) {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if !namespacePattern.MatchString(o.Namespace) {
		return nil, fault.Errorf(fault.Invalid, "fsmarketplace.New", "namespace %q: want 1 to 63 of [a-z0-9_-], starting with a letter or digit", o.Namespace)
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Accounts{c: client, root: client.Collection(ColRoot).Doc(o.Namespace), o: o}, nil
}

func (a *Accounts) accountRef(id string) *fs.DocumentRef {
	return a.root.Collection(ColAccounts).Doc(id)
}

func (a *Accounts) tenantRef(id string) *fs.DocumentRef {
	return a.root.Collection(ColTenants).Doc(id)
}

// Ping reads the accounts collection: a health check.
func (a *Accounts) Ping(ctx context.Context) error {
	_, err := a.root.Collection(ColAccounts).Limit(1).Documents(ctx).GetAll()
	return fserr.Wrap("fsmarketplace.Ping", err)
}

type linkDoc struct {
	Account   string    `firestore:"account"`
	Tenant    string    `firestore:"tenant"`
	Source    string    `firestore:"source"`
	CreatedAt time.Time `firestore:"created_at"`
}

func data(l marketplace.Link) map[string]any {
	return map[string]any{"account": l.Account, "tenant": l.Tenant, "source": l.Source, "created_at": l.CreatedAt.UTC()}
}

func decode(snap *fs.DocumentSnapshot) (marketplace.Link, error) {
	var d linkDoc
	if err := snap.DataTo(&d); err != nil {
		return marketplace.Link{}, fault.Wrap(fault.Internal, "fsmarketplace.link "+snap.Ref.ID, err)
	}
	return marketplace.Link{Account: d.Account, Tenant: d.Tenant, Source: d.Source, CreatedAt: d.CreatedAt.UTC()}, nil
}

// get reads a link document in t; found is false when it is missing.
func get(t *fs.Transaction, ref *fs.DocumentRef) (l marketplace.Link, found bool, err error) {
	snap, err := t.Get(ref)
	if status.Code(err) == codes.NotFound {
		return marketplace.Link{}, false, nil
	}
	if err != nil {
		return marketplace.Link{}, false, err
	}
	l, err = decode(snap)
	return l, err == nil, err
}

// put writes l unless it exists, in one transaction with the conflict
// checks, and returns the link stored. When keep is true an existing link
// of the account is returned whatever its tenant (Link); otherwise it must
// be l's (Put).
func (a *Accounts) put(ctx context.Context, op string, l marketplace.Link, keep bool) (marketplace.Link, error) {
	var out marketplace.Link
	err := a.c.RunTransaction(ctx, func(ctx context.Context, t *fs.Transaction) error {
		ofAccount, found, err := get(t, a.accountRef(l.Account))
		if err != nil {
			return err
		}
		if found && keep {
			out = ofAccount
			return nil
		}
		ofTenant, _, err := get(t, a.tenantRef(l.Tenant))
		if err != nil {
			return err
		}
		if err := marketplace.CheckConflict(l, ofAccount, ofTenant.Account); err != nil {
			return err
		}
		if found {
			out = ofAccount
			return nil
		}
		out = l
		if err := t.Create(a.accountRef(l.Account), data(l)); err != nil {
			return err
		}
		return t.Create(a.tenantRef(l.Tenant), data(l))
	}, fs.MaxAttempts(a.o.MaxAttempts))
	if err != nil {
		return marketplace.Link{}, fserr.Wrap(op, err)
	}
	return out, nil
}

// Link returns the link of account, creating it with
// marketplace.DefaultTenant.
func (a *Accounts) Link(ctx context.Context, account, source string) (marketplace.Link, error) {
	if err := marketplace.ValidAccount(account); err != nil {
		return marketplace.Link{}, err
	}
	if err := marketplace.ValidSource(source); err != nil {
		return marketplace.Link{}, err
	}
	l := marketplace.Link{Account: account, Tenant: marketplace.DefaultTenant(account), Source: source, CreatedAt: a.now()}
	return a.put(ctx, "fsmarketplace.Link", l, true)
}

// Put creates l, or does nothing when it exists as given.
func (a *Accounts) Put(ctx context.Context, l marketplace.Link) error {
	if err := marketplace.ValidLink(l); err != nil {
		return err
	}
	if l.CreatedAt.IsZero() {
		l.CreatedAt = a.now()
	}
	_, err := a.put(ctx, "fsmarketplace.Put", l, false)
	return err
}

func (a *Accounts) now() time.Time { return a.o.Now().UTC().Truncate(time.Microsecond) }

// ByAccount returns the link of account.
func (a *Accounts) ByAccount(ctx context.Context, account string) (marketplace.Link, error) {
	if err := marketplace.ValidAccount(account); err != nil {
		return marketplace.Link{}, err
	}
	return a.read(ctx, "fsmarketplace.ByAccount", a.accountRef(account), "account "+account+" is not linked to a tenant")
}

// ByTenant returns the link of tenant.
func (a *Accounts) ByTenant(ctx context.Context, tenant string) (marketplace.Link, error) {
	if err := event.ValidTenant(tenant); err != nil {
		return marketplace.Link{}, err
	}
	return a.read(ctx, "fsmarketplace.ByTenant", a.tenantRef(tenant), "tenant "+tenant+" is not linked to a Marketplace account")
}

func (a *Accounts) read(ctx context.Context, op string, ref *fs.DocumentRef, missing string) (marketplace.Link, error) {
	snap, err := ref.Get(ctx)
	if status.Code(err) == codes.NotFound {
		return marketplace.Link{}, fault.Errorf(fault.NotFound, op, "%s", missing)
	}
	if err != nil {
		return marketplace.Link{}, fserr.Wrap(op, err)
	}
	return decode(snap)
}

// List returns up to limit links whose account id sorts after after.
func (a *Accounts) List(ctx context.Context, after string, limit int) ([]marketplace.Link, error) {
	const op = "fsmarketplace.List"
	limit, err := marketplace.ValidListArgs(after, limit)
	if err != nil {
		return nil, err
	}
	q := a.root.Collection(ColAccounts).OrderBy(fs.DocumentID, fs.Asc).Limit(limit)
	if after != "" {
		q = q.StartAfter(a.accountRef(after))
	}
	snaps, err := q.Documents(ctx).GetAll()
	if err != nil {
		return nil, fserr.Wrap(op, err)
	}
	out := make([]marketplace.Link, 0, len(snaps))
	for _, s := range snaps {
		l, err := decode(s)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}
