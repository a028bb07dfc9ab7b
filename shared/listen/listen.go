// Package listen names the address a Cloud Run service listens on: every
// interface, as Cloud Run requires, unless the local stack narrows it to
// the loopback interface.
package listen

import "net"

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
