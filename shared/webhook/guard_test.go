package webhook_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/webhook"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

// checkURL runs CheckURL with a guard.
func checkURL(t *testing.T, g webhook.Guard, raw string) error {
	t.Helper()
	_, err := g.CheckURL(raw)
	if err != nil && fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("CheckURL(%q) = %v, want an invalid error", raw, err)
	}
	return err
}

func TestSSRFPrivateAddressRefusedAtRegistration(t *testing.T) {
	for _, u := range []string{
		"https://10.0.0.1/hook", "https://172.16.5.4/hook", "https://192.168.1.1/hook", "https://100.64.0.1/hook",
		"https://[fd00::1]/hook", "https://[::ffff:10.0.0.1]/hook", "https://[64:ff9b::a00:1]/hook",
	} {
		if checkURL(t, webhook.Guard{}, u) == nil {
			t.Errorf("CheckURL(%q) accepted a private address", u)
		}
		if checkURL(t, webhook.Guard{AllowPrivate: true}, u) != nil {
			t.Errorf("CheckURL(%q) refused a private address the guard allows", u)
		}
	}
}

func TestSSRFLoopbackRefusedUnlessConfigured(t *testing.T) {
	for _, u := range []string{"https://127.0.0.1/hook", "https://[::1]/hook", "https://localhost/hook", "https://x.localhost/hook", "https://[::ffff:127.0.0.1]/hook", "https://127.1.2.3/"} {
		if checkURL(t, webhook.Guard{}, u) == nil {
			t.Errorf("CheckURL(%q) accepted loopback", u)
		}
		if checkURL(t, webhook.Guard{AllowLoopback: true}, u) != nil {
			t.Errorf("CheckURL(%q) refused loopback the guard allows", u)
		}
	}
}

func TestSSRFMetadataServerRefused(t *testing.T) {
	for _, u := range []string{
		"https://169.254.169.254/computeMetadata/v1/", "https://metadata.google.internal/computeMetadata/v1/",
		"https://metadata/computeMetadata/v1/", "https://[fe80::1]/", "https://0.0.0.0/", "https://[::]/", "https://224.0.0.1/",
	} {
		g := webhook.Guard{AllowLoopback: true, AllowPrivate: true}
		if checkURL(t, g, u) == nil {
			t.Errorf("CheckURL(%q) accepted it even with every allowance", u)
		}
	}
}

func TestSSRFPlainHTTPRefused(t *testing.T) {
	tests := []struct {
		g  webhook.Guard
		u  string
		ok bool
	}{
		{webhook.Guard{}, "http://hooks.example.com/x", false},
		{webhook.Guard{AllowLoopback: true}, "http://hooks.example.com/x", false},
		{webhook.Guard{AllowPrivate: true}, "http://10.0.0.2/x", false},
		{webhook.Guard{}, "http://127.0.0.1:9000/x", false},
		{webhook.Guard{AllowLoopback: true}, "http://127.0.0.1:9000/x", true},
		{webhook.Guard{AllowLoopback: true}, "http://localhost:9000/x", true},
		{webhook.Guard{}, "ftp://hooks.example.com/x", false},
		{webhook.Guard{}, "https://hooks.example.com/x", true},
	}
	for _, tt := range tests {
		if err := checkURL(t, tt.g, tt.u); (err == nil) != tt.ok {
			t.Errorf("%+v CheckURL(%q) = %v, want ok %v", tt.g, tt.u, err, tt.ok)
		}
	}
}

func TestSSRFCredentialsAndOddURLsRefused(t *testing.T) {
	for _, u := range []string{"https://user:pw@hooks.example.com/", "https://hooks.example.com/#frag", "hooks.example.com/x", "https:///x", "https://h:0/", "https://h:123456/"} {
		if err := checkURL(t, webhook.Guard{}, u); err == nil {
			t.Errorf("CheckURL(%q) accepted it", u)
		} else if strings.Contains(err.Error(), "pw@") {
			t.Errorf("the error %q repeats the credentials", err)
		}
	}
}

// TestSSRFDNSRebindingRefusedAtDial registers a name that passes every
// check at registration and then resolves to loopback: the connection is
// refused when it is dialled, and the receiver there sees nothing.
func TestSSRFDNSRebindingRefusedAtDial(t *testing.T) {
	guard := &webhook.Guard{Lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	}}
	f := newFixture(t, guard)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(f.recv.URL, "http://"))
	f.endpoint("rebind", "https://hooks.example.com:"+port+"/in")
	f.action("act-1", "acme")
	if n := len(f.recv.Requests()); n != 0 {
		t.Fatalf("the loopback receiver got %d requests", n)
	}
	h := f.history("act-1")
	if len(h.Attempts) != 1 || h.Attempts[0].Outcome != webhook.Refused || !strings.Contains(h.Attempts[0].Error, "loopback") {
		t.Errorf("attempts %+v, want one refused for loopback", h.Attempts)
	}
	if h.Deliveries[0].State != webhook.Pending {
		t.Errorf("delivery %s, want pending (a refusal is retried: DNS may change back)", h.Deliveries[0].State)
	}
}

func TestSSRFControlRefusesEveryForbiddenAddress(t *testing.T) {
	g := webhook.Guard{}
	for _, addr := range []string{"127.0.0.1:443", "[::1]:443", "10.1.2.3:443", "169.254.169.254:80", "[fe80::1]:443", "0.0.0.0:443", "[::ffff:127.0.0.1]:443", "192.168.0.10:443"} {
		err := g.Control("tcp", addr, nil)
		if !errors.Is(err, webhook.ErrRefusedAddress) {
			t.Errorf("Control(%s) = %v, want a refusal", addr, err)
		}
	}
	if err := g.Control("tcp", "203.0.113.7:443", nil); err != nil {
		t.Errorf("Control of a public address = %v", err)
	}
}

func TestSSRFPlainHTTPDialOnlyReachesLoopback(t *testing.T) {
	// A plain-http URL can only be registered for loopback, but the
	// dialer of plain http holds the line by itself too.
	c := (&webhook.Guard{AllowLoopback: true, Lookup: func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("10.9.9.9")}, nil
	}}).Clients()
	u, _ := url.Parse("http://localhost:9/")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	_, err := c.For(u).Do(req)
	if !errors.Is(err, webhook.ErrRefusedAddress) {
		t.Errorf("plain http to a name resolving to 10.9.9.9 = %v, want a refusal", err)
	}
}

func TestSSRFRedirectNotFollowed(t *testing.T) {
	f := newFixture(t, nil)
	target := webhooktest.NewReceiver(t)
	f.recv.Respond(func(webhooktest.Request, int) (int, string) { return http.StatusTemporaryRedirect, "" })
	inner := f.recv.Config.Handler
	f.recv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", target.URL+"/stolen")
		inner.ServeHTTP(w, r)
	})
	f.endpoint("ops", "")
	f.action("act-1", "acme")
	if n := len(target.Requests()); n != 0 {
		t.Errorf("the redirect was followed: %d requests at its target", n)
	}
	if a := f.history("act-1").Attempts[0]; a.Status != http.StatusTemporaryRedirect || a.Outcome != webhook.Retry {
		t.Errorf("attempt %d %s, want 307 retry", a.Status, a.Outcome)
	}
}

// A fully qualified name ends in a dot and resolves as the name without
// it: "metadata.google.internal." is the metadata server and "localhost."
// loopback, so the registration check of names must see through the dot.
func TestSSRFTrailingDotNamesRefusedAtRegistration(t *testing.T) {
	for _, u := range []string{
		"https://metadata.google.internal./computeMetadata/v1/", "https://metadata./computeMetadata/v1/",
		"https://METADATA.GOOGLE.INTERNAL../", "https://x.metadata.goog./",
	} {
		if checkURL(t, webhook.Guard{AllowLoopback: true, AllowPrivate: true}, u) == nil {
			t.Errorf("CheckURL(%q) accepted the metadata server", u)
		}
	}
	for _, u := range []string{"https://localhost./hook", "https://x.localhost./hook"} {
		if checkURL(t, webhook.Guard{}, u) == nil {
			t.Errorf("CheckURL(%q) accepted loopback", u)
		}
	}
}
