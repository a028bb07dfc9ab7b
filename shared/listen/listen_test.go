package listen

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func TestAddr(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{nil, ":8080"},
		{map[string]string{EnvPort: "9000"}, ":9000"},
		{map[string]string{EnvPort: "9000", EnvHost: "127.0.0.1"}, "127.0.0.1:9000"},
		{map[string]string{EnvHost: "::1"}, "[::1]:8080"},
	}
	for _, tt := range tests {
		if got := Addr(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("Addr(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

func TestServeDrainsOnCancel(t *testing.T) {
	hs := &http.Server{Addr: "127.0.0.1:0", Handler: http.NotFoundHandler()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, hs) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel = %v, want nil", err)
		}
	case <-time.After(DrainTimeout + time.Second):
		t.Fatal("Serve did not return after its context was cancelled")
	}
}

func TestServeReturnsListenError(t *testing.T) {
	if err := Serve(context.Background(), &http.Server{Addr: "127.0.0.1:-1"}); err == nil {
		t.Error("Serve on an invalid address = nil, want an error")
	}
}

func TestIsLoopbackURL(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want bool
	}{
		{"http://127.0.0.1:8799/", true}, {"http://127.3.4.5/", true}, {"http://[::1]:80/", true},
		{"http://localhost:1/", true}, {"http://LOCALHOST/", true}, {"http://[::ffff:127.0.0.1]/", true},
		{"https://example.com/", false}, {"http://localhost.attacker.example/", false},
		{"http://127.0.0.1.nip.io/", false}, {"http://[::ffff:8.8.8.8]/", false}, {"http://0.0.0.0/", false},
		{"http://10.0.0.1/", false}, {"://bad", false}, {"", false},
	} {
		if got := IsLoopbackURL(tt.url); got != tt.want {
			t.Errorf("IsLoopbackURL(%q) = %v, want %v", tt.url, got, tt.want)
		}
	}
}
