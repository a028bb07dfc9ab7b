// Package listen names the address a Cloud Run service listens on — every
// interface, as Cloud Run requires, unless the local stack narrows it to
// the loopback interface — and serves it until the service is told to
// stop, draining the requests in flight.
package listen

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Environment variables read by Addr.
const (
	// EnvPort is the port, set by Cloud Run; 8080 when unset.
	EnvPort = "PORT"
	// EnvHost is the host to bind; every interface when unset. The local
	// stack sets 127.0.0.1 so that nothing off the machine reaches it.
	EnvHost = "AUTONOMICS_LISTEN_HOST"
)

// DefaultPort is the port when EnvPort is unset.
const DefaultPort = "8080"

// Addr returns host:port from getenv (os.Getenv in mains).
func Addr(getenv func(string) string) string {
	port := getenv(EnvPort)
	if port == "" {
		port = DefaultPort
	}
	return net.JoinHostPort(getenv(EnvHost), port)
}

// DrainTimeout bounds how long Serve waits for requests in flight once
// its context is done: Cloud Run gives an instance ten seconds after
// SIGTERM.
const DrainTimeout = 10 * time.Second

// Serve serves hs until it fails or ctx is done, then shuts it down,
// waiting at most DrainTimeout for the requests in flight. It returns the
// error that stopped the server, nil after an orderly shutdown.
func Serve(ctx context.Context, hs *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.ListenAndServe() }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	if serr := hs.Shutdown(shutdown); serr != nil && err == nil {
		err = serr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// IsLoopbackHost reports whether host (a URL's Hostname(), no port) names
// this machine: "localhost" (any case) or a loopback address, an IPv4
// address mapped into IPv6 included. A name that merely starts with
// localhost or resolves to loopback elsewhere does not count.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// IsLoopbackURL reports whether rawURL's host names this machine (see
// IsLoopbackHost); an unparsable URL does not.
func IsLoopbackURL(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && IsLoopbackHost(u.Hostname())
}
