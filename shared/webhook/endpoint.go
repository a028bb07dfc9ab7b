package webhook

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// AllKinds subscribes an endpoint to every action kind.
const AllKinds = "*"

// Bounds of an endpoint's settings.
const (
	MaxEndpoints     = 100
	MaxURLBytes      = 2048
	MaxSecrets       = 2
	DefaultTimeout   = 15 * time.Second
	MaxTimeout       = 30 * time.Second
	DefaultInFlight  = 4
	MaxInFlight      = 64
	maxReasonBytes   = 512
	maxEndpointKinds = 64
)

// Endpoint is a receiver of webhooks.
type Endpoint struct {
	// ID names the endpoint: 1 to 63 of [a-z0-9_-], starting with a letter
	// or digit.
	ID string
	// URL receives the POSTs; https, or http to a loopback address when
	// the Guard allows loopback.
	URL string
	// Kinds are the action kinds it receives; AllKinds for every kind.
	Kinds []string
	// Secrets sign its deliveries: one, or two during a rotation. Each is
	// "whsec_<base64>" or a Secret Manager version name
	// "projects/P/secrets/S/versions/V" whose payload is one.
	Secrets []string
	// Disabled endpoints receive nothing; DisabledReason says why (an
	// operator, or a 410 Gone from the receiver).
	Disabled       bool
	DisabledReason string
	// Timeout bounds one attempt (DefaultTimeout when 0); MaxInFlight
	// bounds this process's attempts in flight to it (DefaultInFlight
	// when 0).
	Timeout     time.Duration
	MaxInFlight int
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Wants reports whether e receives actions of kind.
func (e *Endpoint) Wants(kind string) bool {
	return slices.Contains(e.Kinds, AllKinds) || slices.Contains(e.Kinds, kind)
}

// timeout returns the attempt timeout.
func (e *Endpoint) timeout() time.Duration {
	if e.Timeout <= 0 {
		return DefaultTimeout
	}
	return e.Timeout
}

// inFlight returns the bound on attempts in flight.
func (e *Endpoint) inFlight() int {
	if e.MaxInFlight <= 0 {
		return DefaultInFlight
	}
	return e.MaxInFlight
}

var (
	endpointID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	secretRef  = regexp.MustCompile(`^projects/[a-z0-9-]{1,64}/secrets/[A-Za-z0-9_-]{1,255}/versions/(latest|[0-9]{1,10})$`)
)

// ValidEndpointID returns an Invalid error unless id is a valid endpoint id.
func ValidEndpointID(id string) error {
	if !endpointID.MatchString(id) {
		return fault.Errorf(fault.Invalid, "webhook.ValidEndpointID", "endpoint id %s: want 1 to 63 of [a-z0-9_-], starting with a letter or digit", quote(id))
	}
	return nil
}

// IsSecretRef reports whether s names a Secret Manager secret version.
func IsSecretRef(s string) bool { return secretRef.MatchString(s) }

// Check validates e against the guard (its URL), the known kinds and
// whether inline secrets are allowed. Every error is Invalid and quotes at
// most a short prefix of what it refuses; no error repeats a secret.
func (e *Endpoint) Check(g *Guard, kinds Kinds, inline bool) error {
	const op = "webhook.Endpoint"
	if err := ValidEndpointID(e.ID); err != nil {
		return err
	}
	if len(e.URL) > MaxURLBytes {
		return fault.Errorf(fault.Invalid, op, "url is %d bytes, limit %d", len(e.URL), MaxURLBytes)
	}
	if _, err := g.CheckURL(e.URL); err != nil {
		return err
	}
	if len(e.Kinds) == 0 || len(e.Kinds) > maxEndpointKinds {
		return fault.Errorf(fault.Invalid, op, "kinds: want 1 to %d action kinds, or [%q]", maxEndpointKinds, AllKinds)
	}
	seen := map[string]bool{}
	for _, k := range e.Kinds {
		if seen[k] {
			return fault.Errorf(fault.Invalid, op, "kinds: %s is listed twice", quote(k))
		}
		seen[k] = true
		if k == AllKinds {
			if len(e.Kinds) > 1 {
				return fault.Errorf(fault.Invalid, op, "kinds: %q stands alone", AllKinds)
			}
			continue
		}
		if !kinds.Known(k) {
			return fault.Errorf(fault.Invalid, op, "kinds: %s is not an action any governor emits (%s)", quote(k), strings.Join(kinds.All(), ", "))
		}
	}
	if len(e.Secrets) == 0 || len(e.Secrets) > MaxSecrets {
		return fault.Errorf(fault.Invalid, op, "secrets: want 1 secret, or 2 while rotating")
	}
	for i, s := range e.Secrets {
		switch {
		case IsSecretRef(s):
		case strings.HasPrefix(s, SecretPrefix):
			if !inline {
				return fault.Errorf(fault.Invalid, op, "secrets[%d]: inline secrets are refused here; give a Secret Manager version (projects/P/secrets/S/versions/V)", i)
			}
			if _, err := ParseSecret(s); err != nil {
				return fault.Errorf(fault.Invalid, op, "secrets[%d]: %s", i, fault.ErrorMessage(err))
			}
		default:
			return fault.Errorf(fault.Invalid, op, "secrets[%d]: want %q followed by base64, or projects/P/secrets/S/versions/V", i, SecretPrefix)
		}
	}
	if e.Timeout < 0 || e.Timeout > MaxTimeout {
		return fault.Errorf(fault.Invalid, op, "timeout: at most %v", MaxTimeout)
	}
	if e.MaxInFlight < 0 || e.MaxInFlight > MaxInFlight {
		return fault.Errorf(fault.Invalid, op, "max_in_flight: at most %d", MaxInFlight)
	}
	if len(e.DisabledReason) > maxReasonBytes {
		return fault.Errorf(fault.Invalid, op, "disabled_reason: at most %d bytes", maxReasonBytes)
	}
	return nil
}

// SecretView is how the API shows a secret: never its value.
type SecretView struct {
	// Kind is "inline" or "secret_manager".
	Kind string `json:"kind"`
	// Fingerprint identifies an inline secret (Fingerprint); Name is a
	// Secret Manager version's name.
	Fingerprint string `json:"fingerprint,omitempty"`
	Name        string `json:"name,omitempty"`
}

// SecretViews returns the redacted secrets of e.
func (e *Endpoint) SecretViews() []SecretView {
	out := make([]SecretView, 0, len(e.Secrets))
	for _, s := range e.Secrets {
		if IsSecretRef(s) {
			out = append(out, SecretView{Kind: "secret_manager", Name: s})
			continue
		}
		v := SecretView{Kind: "inline"}
		if sec, err := ParseSecret(s); err == nil {
			v.Fingerprint = Fingerprint(sec)
		}
		out = append(out, v)
	}
	return out
}

// SecretResolver returns the secret a Secret Manager version holds.
type SecretResolver interface {
	Resolve(ctx context.Context, ref string) (Secret, error)
}

// SecretFunc adapts a function to SecretResolver.
type SecretFunc func(ctx context.Context, ref string) (Secret, error)

// Resolve calls f.
func (f SecretFunc) Resolve(ctx context.Context, ref string) (Secret, error) { return f(ctx, ref) }

// CachedResolver caches what another resolver returns for TTL, so that a
// rotation (a new version of a secret named ".../versions/latest") takes
// effect within TTL without a lookup per delivery.
type CachedResolver struct {
	Next SecretResolver
	TTL  time.Duration
	// Clock is time.Now when nil.
	Clock func() time.Time

	mu    sync.Mutex
	cache map[string]cachedSecret
}

type cachedSecret struct {
	s   Secret
	exp time.Time
}

// Resolve returns the cached secret of ref, or resolves it.
func (c *CachedResolver) Resolve(ctx context.Context, ref string) (Secret, error) {
	now := time.Now
	if c.Clock != nil {
		now = c.Clock
	}
	c.mu.Lock()
	if e, ok := c.cache[ref]; ok && now().Before(e.exp) {
		c.mu.Unlock()
		return e.s, nil
	}
	c.mu.Unlock()
	s, err := c.Next.Resolve(ctx, ref)
	if err != nil {
		return Secret{}, err
	}
	c.mu.Lock()
	if c.cache == nil {
		c.cache = map[string]cachedSecret{}
	}
	c.cache[ref] = cachedSecret{s: s, exp: now().Add(c.TTL)}
	c.mu.Unlock()
	return s, nil
}

// noResolver refuses every reference; it serves a Deliverer without one.
type noResolver struct{}

func (noResolver) Resolve(context.Context, string) (Secret, error) {
	return Secret{}, fault.Errorf(fault.Unavailable, "webhook.Resolve", "no Secret Manager client: secret references cannot be resolved here")
}

// secrets returns the signing secrets of e.
func secrets(ctx context.Context, r SecretResolver, e *Endpoint) ([]Secret, error) {
	out := make([]Secret, 0, len(e.Secrets))
	for _, s := range e.Secrets {
		if IsSecretRef(s) {
			sec, err := r.Resolve(ctx, s)
			if err != nil {
				return nil, err
			}
			out = append(out, sec)
			continue
		}
		sec, err := ParseSecret(s)
		if err != nil {
			return nil, err
		}
		out = append(out, sec)
	}
	return out, nil
}
