package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// Guard decides which endpoints webhooks may be sent to: at registration
// (CheckURL) and on every connection (Control). The zero Guard allows
// public addresses over https only.
type Guard struct {
	// AllowLoopback admits loopback addresses, and plain http to them:
	// the local stack, whose receivers run on 127.0.0.1.
	AllowLoopback bool
	// AllowPrivate admits private (RFC 1918, fc00::/7) and shared
	// (100.64.0.0/10) addresses: receivers inside the deployment's own
	// network. Link-local addresses, the metadata server's among them,
	// are never admitted.
	AllowPrivate bool
	// Lookup resolves host names before dialling; nil leaves it to the
	// dialer. Tests use it to stand in for DNS.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error)
}

// ErrRefusedAddress is in the chain of every error of a connection the
// Guard refused.
var ErrRefusedAddress = errors.New("address refused")

// Names that always resolve to addresses the Guard refuses.
var metadataHosts = []string{"metadata", "metadata.google.internal", "metadata.goog"}

var (
	sharedRange = netip.MustParsePrefix("100.64.0.0/10")
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
	broadcast   = netip.MustParseAddr("255.255.255.255")
)

// CheckAddr returns an error wrapping ErrRefusedAddress unless g admits a
// connection to ip.
func (g *Guard) CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap()
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	why := ""
	switch {
	case !ip.IsValid():
		why = "not an address"
	case ip.IsUnspecified() || thisNetwork.Contains(ip) || ip == broadcast:
		why = "unspecified"
	case ip.IsLoopback():
		if !g.AllowLoopback {
			why = "loopback"
		}
	case ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		why = "link-local (the metadata server's range)"
	case ip.IsMulticast() || ip.IsInterfaceLocalMulticast():
		why = "multicast"
	case ip.IsPrivate() || sharedRange.Contains(ip):
		if !g.AllowPrivate {
			why = "private"
		}
	}
	if why != "" {
		return fault.Wrap(fault.Invalid, "webhook.Guard", &refusedError{addr: ip.String(), why: why})
	}
	return nil
}

// refusedError says which address was refused and why.
type refusedError struct{ addr, why string }

func (e *refusedError) Error() string { return "address " + e.addr + " is " + e.why + ": refused" }
func (e *refusedError) Unwrap() error { return ErrRefusedAddress }

// CheckURL validates an endpoint URL at registration: absolute, https (or
// http to a loopback host when loopback is allowed), a host and no user
// information; a literal address must be admitted by CheckAddr, and names
// of the metadata server or of localhost are refused unless loopback is.
// The addresses a name resolves to are checked on every connection, not
// here.
func (g *Guard) CheckURL(raw string) (*url.URL, error) {
	const op = "webhook.CheckURL"
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		return nil, fault.Errorf(fault.Invalid, op, "url %s: want an absolute https URL", quote(raw))
	}
	if u.User != nil {
		return nil, fault.Errorf(fault.Invalid, op, "url: no user information (credentials) in the URL")
	}
	if u.Fragment != "" {
		return nil, fault.Errorf(fault.Invalid, op, "url %s: no fragment", quote(raw))
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return nil, fault.Errorf(fault.Invalid, op, "url %s: no host", quote(raw))
	}
	if p := u.Port(); p != "" && (len(p) > 5 || p == "0") {
		return nil, fault.Errorf(fault.Invalid, op, "url %s: bad port", quote(raw))
	}
	ip, perr := netip.ParseAddr(strings.Trim(host, "[]"))
	literal := perr == nil
	// A fully qualified name's final dot resolves as the name without it.
	name := strings.TrimRight(host, ".")
	loopbackName := name == "localhost" || strings.HasSuffix(name, ".localhost")
	switch u.Scheme {
	case "https":
	case "http":
		if !g.AllowLoopback || !(loopbackName || literal && ip.Unmap().IsLoopback()) {
			return nil, fault.Errorf(fault.Invalid, op, "url %s: webhooks go over https (plain http only to loopback, on the local stack)", quote(raw))
		}
	default:
		return nil, fault.Errorf(fault.Invalid, op, "url %s: want https", quote(raw))
	}
	if literal {
		if err := g.CheckAddr(ip); err != nil {
			return nil, fault.Errorf(fault.Invalid, op, "url %s: %s", quote(raw), errors.Unwrap(err).Error())
		}
	}
	for _, m := range metadataHosts {
		if name == m || strings.HasSuffix(name, "."+m) {
			return nil, fault.Errorf(fault.Invalid, op, "url %s: the metadata server is refused", quote(raw))
		}
	}
	if loopbackName && !g.AllowLoopback {
		return nil, fault.Errorf(fault.Invalid, op, "url %s: loopback is refused", quote(raw))
	}
	return u, nil
}

// Control is a net.Dialer Control function that refuses connections to
// addresses CheckAddr refuses. It sees the address actually dialled, after
// name resolution.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fault.Wrap(fault.Invalid, "webhook.Guard", err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fault.Wrap(fault.Invalid, "webhook.Guard", err)
	}
	return g.CheckAddr(ip)
}

// loopbackOnly refuses everything but loopback: the dialer of plain http.
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fault.Wrap(fault.Invalid, "webhook.Guard", &refusedError{addr: host, why: "not loopback (plain http)"})
	}
	return nil
}

// Clients are the HTTP clients of deliveries: Secure for https endpoints,
// Plain for http ones (whose connections may only reach loopback).
type Clients struct {
	Secure *http.Client
	Plain  *http.Client
}

// For returns the client of an endpoint URL.
func (c Clients) For(u *url.URL) *http.Client {
	if u.Scheme == "http" {
		return c.Plain
	}
	return c.Secure
}

// Clients returns the HTTP clients g guards: no proxy, no redirects
// followed, every connection checked by Control (loopback only for plain
// http).
func (g *Guard) Clients() Clients {
	mk := func(control func(string, string, syscall.RawConn) error) *http.Client {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: control}
		dial := d.DialContext
		if g.Lookup != nil {
			dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				host, port, err := net.SplitHostPort(addr)
				if err != nil {
					return nil, err
				}
				if _, err := netip.ParseAddr(host); err == nil {
					return d.DialContext(ctx, network, addr)
				}
				ips, err := g.Lookup(ctx, host)
				if err != nil {
					return nil, err
				}
				var first error
				for _, ip := range ips {
					c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
					if err == nil {
						return c, nil
					}
					if first == nil {
						first = err
					}
				}
				if first == nil {
					first = errors.New("no address for " + host)
				}
				return nil, first
			}
		}
		t := &http.Transport{
			Proxy:                 nil,
			DialContext:           dial,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: MaxTimeout,
			ExpectContinueTimeout: time.Second,
		}
		return &http.Client{
			Transport: t,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	plain := loopbackOnly
	if !g.AllowLoopback {
		plain = func(string, string, syscall.RawConn) error {
			return fault.Wrap(fault.Invalid, "webhook.Guard", &refusedError{addr: "any", why: "plain http (loopback is not allowed)"})
		}
	}
	return Clients{Secure: mk(g.Control), Plain: mk(plain)}
}
