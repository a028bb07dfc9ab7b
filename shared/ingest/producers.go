package ingest

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
)

// Sources of the events the ingest API publishes: the prefix, then the
// producer's name.
const (
	// SourcePrefix starts the source of an external producer's events.
	SourcePrefix = "ingest/"
	// MarketplaceSourcePrefix starts the source of a marketplace
	// producer's events; the engine classifies them as marketplace.
	MarketplaceSourcePrefix = "marketplace/"
)

// Rate limit defaults and bounds of a producer, in events.
const (
	// DefaultRate is a producer's sustained rate when its rule sets none,
	// in events per second.
	DefaultRate = 50
	// DefaultBurst is a producer's burst when its rule sets none: a full
	// batch.
	DefaultBurst = DefaultMaxBatchEvents
	// MaxRate and MaxBurst bound what a rule may set.
	MaxRate  = 10000
	MaxBurst = 10000
)

// MaxProducers bounds the producers of one deployment (each has its own
// rate limiter and replay cache).
const MaxProducers = 1000

// AnyTenant in a producer's tenants lets it send for every tenant.
const AnyTenant = "*"

// namePattern is what a producer name may be: it becomes part of a
// CloudEvents source.
var namePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// keyIDPattern is what an HMAC key id may be.
var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Producer is the rule of one producer, as configured (ParseRules).
type Producer struct {
	// Name names the producer in its events' source and in logs.
	Name string `json:"name"`
	// Class is the sender class its events are sent as: "external" or
	// "marketplace".
	Class governor.Sender `json:"class"`
	// Email is the Google identity (a service account's email) whose ID
	// tokens authenticate it; empty when it signs with HMAC only.
	Email string `json:"email"`
	// KeyIDs name the HMAC keys it signs with (several during a rotation);
	// empty when it uses ID tokens only.
	KeyIDs []string `json:"key_ids"`
	// Types are the event types it may send: exact types, or
	// "autonomics.<domain>.*" for every event of a domain.
	Types []string `json:"types"`
	// Tenants are the tenant ids it may send for, or ["*"] for all.
	Tenants []string `json:"tenants"`
	// Rate is its sustained rate in events per second (DefaultRate when
	// zero) and Burst the most events it may send at once (DefaultBurst
	// when zero); a batch counts each of its events.
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`

	types     map[string]bool
	domains   map[governor.Domain]bool
	tenants   map[string]bool
	anyTenant bool
}

// Source returns the CloudEvents source of the producer's events.
func (p *Producer) Source() string {
	if p.Class == governor.SenderMarketplace {
		return MarketplaceSourcePrefix + p.Name
	}
	return SourcePrefix + p.Name
}

// mayType reports whether the producer's rule lets it send type t of
// domain d.
func (p *Producer) mayType(d governor.Domain, t string) bool {
	return p.types[t] || p.domains[d]
}

// mayTenant reports whether the producer's rule lets it send for tenant.
func (p *Producer) mayTenant(tenant string) bool {
	return p.anyTenant || p.tenants[tenant]
}

// check validates the rule against the machines and compiles its
// matchers.
func (p *Producer) check(machines map[governor.Domain]*governor.Machine) error {
	const op = "ingest.ParseRules"
	if !namePattern.MatchString(p.Name) {
		return fault.Errorf(fault.Invalid, op, "producer name %s: must match %s", httpjson.Quote(p.Name), namePattern)
	}
	fail := func(format string, args ...any) error {
		return fault.Errorf(fault.Invalid, op, "producer %s: "+format, append([]any{p.Name}, args...)...)
	}
	switch p.Class {
	case governor.SenderExternal, governor.SenderMarketplace:
	default:
		return fail("class %s: want %s or %s", httpjson.Quote(string(p.Class)), governor.SenderExternal, governor.SenderMarketplace)
	}
	if p.Email == "" && len(p.KeyIDs) == 0 {
		return fail("no identity: set email (ID tokens) or key_ids (HMAC)")
	}
	if p.Email != "" {
		if p.Email != strings.TrimSpace(p.Email) || strings.Count(p.Email, "@") != 1 || len(p.Email) > 254 ||
			strings.HasPrefix(p.Email, "@") || strings.HasSuffix(p.Email, "@") {
			return fail("email %s: not an email address", httpjson.Quote(p.Email))
		}
		p.Email = strings.ToLower(p.Email)
	}
	for _, k := range p.KeyIDs {
		if !keyIDPattern.MatchString(k) {
			return fail("key id %s: must match %s", httpjson.Quote(k), keyIDPattern)
		}
	}
	if len(p.Types) == 0 {
		return fail("no types: list the event types it may send")
	}
	p.types, p.domains = map[string]bool{}, map[governor.Domain]bool{}
	for _, t := range p.Types {
		rest, ok := strings.CutPrefix(t, "autonomics.")
		d, name, ok2 := strings.Cut(rest, ".")
		m := machines[governor.Domain(d)]
		switch {
		case !ok || !ok2 || m == nil:
			return fail("type %s: want autonomics.<domain>.<event> or autonomics.<domain>.* with a domain of %v", httpjson.Quote(t), governor.Domains)
		case name == "*":
			p.domains[m.Domain] = true
		case !m.HasEvent(governor.EventName(name)):
			return fail("type %s: the %s machine has no event %s", httpjson.Quote(t), m.Domain, httpjson.Quote(name))
		case !m.May(p.Class, governor.EventName(name)):
			return fail("type %s: the %s machine does not take it from a sender of class %s", httpjson.Quote(t), m.Domain, p.Class)
		default:
			p.types[t] = true
		}
	}
	if len(p.Tenants) == 0 {
		return fail("no tenants: list the tenant ids it may send for, or %q", AnyTenant)
	}
	p.tenants = map[string]bool{}
	for _, t := range p.Tenants {
		if t == AnyTenant {
			p.anyTenant = true
			continue
		}
		if err := event.ValidTenant(t); err != nil {
			return fail("%s", fault.ErrorMessage(err))
		}
		p.tenants[t] = true
	}
	if p.anyTenant && len(p.Tenants) > 1 {
		return fail("tenants: %q stands alone", AnyTenant)
	}
	if p.Rate == 0 {
		p.Rate = DefaultRate
	}
	if p.Burst == 0 {
		p.Burst = DefaultBurst
	}
	if p.Rate < 0 || p.Rate > MaxRate {
		return fail("rate %v: want 0 < rate ≤ %d events per second", p.Rate, MaxRate)
	}
	if p.Burst < 1 || p.Burst > MaxBurst {
		return fail("burst %d: want 1 to %d events", p.Burst, MaxBurst)
	}
	return nil
}

// Rules are the producers of a deployment, by identity.
type Rules struct {
	producers []*Producer
	byEmail   map[string]*Producer
	byKeyID   map[string]*Producer
}

// ParseRules parses and validates producer rules: a JSON array of
// Producer objects, e.g.
//
//	[{"name": "billing", "class": "external",
//	  "email": "billing@p.iam.gserviceaccount.com", "key_ids": ["billing-1"],
//	  "types": ["autonomics.billing.*"], "tenants": ["*"], "rate": 50, "burst": 100}]
//
// Names, emails and key ids are unique; every exact type must be an event
// its machine takes from the producer's class. The JSON is strict:
// duplicate member names and unknown fields are refused; null stands for
// an absent member. Every error is an Invalid *fault.Error.
func ParseRules(data []byte, machines map[governor.Domain]*governor.Machine) (*Rules, error) {
	const op = "ingest.ParseRules"
	var ps []*Producer
	if err := httpjson.Unmarshal(bytes.TrimSpace(data), &ps); err != nil {
		return nil, fault.Errorf(fault.Invalid, op, "producer rules: %v", err)
	}
	if len(ps) > MaxProducers {
		return nil, fault.Errorf(fault.Invalid, op, "%d producers, limit %d", len(ps), MaxProducers)
	}
	r := &Rules{byEmail: map[string]*Producer{}, byKeyID: map[string]*Producer{}}
	names := map[string]bool{}
	for i, p := range ps {
		if p == nil {
			return nil, fault.Errorf(fault.Invalid, op, "producer %d is null", i)
		}
		if err := p.check(machines); err != nil {
			return nil, err
		}
		if names[p.Name] {
			return nil, fault.Errorf(fault.Invalid, op, "producer %s is listed twice", p.Name)
		}
		names[p.Name] = true
		if p.Email != "" {
			if q := r.byEmail[p.Email]; q != nil {
				return nil, fault.Errorf(fault.Invalid, op, "producers %s and %s share the email %s", q.Name, p.Name, p.Email)
			}
			r.byEmail[p.Email] = p
		}
		for _, k := range p.KeyIDs {
			if q := r.byKeyID[k]; q != nil {
				return nil, fault.Errorf(fault.Invalid, op, "producers %s and %s share the key id %s", q.Name, p.Name, k)
			}
			r.byKeyID[k] = p
		}
		r.producers = append(r.producers, p)
	}
	return r, nil
}

// Producers returns the producers in configuration order.
func (r *Rules) Producers() []*Producer { return slices.Clone(r.producers) }

// ByEmail returns the producer whose Google identity is email, or nil.
func (r *Rules) ByEmail(email string) *Producer { return r.byEmail[strings.ToLower(email)] }

// ByKeyID returns the producer that signs with HMAC key id, or nil.
func (r *Rules) ByKeyID(id string) *Producer { return r.byKeyID[id] }

// KeyIDs returns every key id the rules name, sorted.
func (r *Rules) KeyIDs() []string {
	out := make([]string, 0, len(r.byKeyID))
	for k := range r.byKeyID {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// usesTokens reports whether some producer authenticates with ID tokens.
func (r *Rules) usesTokens() bool { return len(r.byEmail) > 0 }

// MarshalJSON renders the rules as ParseRules reads them, with the
// defaults applied.
func (r *Rules) MarshalJSON() ([]byte, error) {
	if r == nil || r.producers == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(r.producers)
}
