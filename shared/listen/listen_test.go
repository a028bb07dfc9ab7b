package listen

import "testing"

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
