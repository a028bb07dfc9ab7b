package store

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		prefix, want string
		ok           bool
	}{
		{"", "", false},
		{"a", "b", true},
		{"t-acme", "t-acmf", true},
		{"t-z", "t-{", true},
		{"é", "ê", true},
		{"a\uD7FF", "a\uE000", true},
		{"a\U0010FFFF", "b", true},
		{"\U0010FFFF\U0010FFFF", "", false},
		{"x\uFFFF", "x\U00010000", true},
	}
	for _, tc := range tests {
		got, ok := PrefixEnd(tc.prefix)
		if got != tc.want || ok != tc.ok {
			t.Errorf("PrefixEnd(%q) = %q, %v; want %q, %v", tc.prefix, got, ok, tc.want, tc.ok)
		}
		if !ok {
			continue
		}
		if !utf8.ValidString(got) {
			t.Errorf("PrefixEnd(%q) = %q, not UTF-8", tc.prefix, got)
		}
		// Every string with the prefix sorts before the end, and the end
		// has no such prefix.
		for _, s := range []string{tc.prefix, tc.prefix + "\x00", tc.prefix + "zzz", tc.prefix + "\U0010FFFF\U0010FFFF"} {
			if s >= got {
				t.Errorf("PrefixEnd(%q) = %q, not after %q", tc.prefix, got, s)
			}
		}
		if strings.HasPrefix(got, tc.prefix) {
			t.Errorf("PrefixEnd(%q) = %q starts with the prefix", tc.prefix, got)
		}
	}
}

func TestLimit(t *testing.T) {
	for _, tc := range []struct{ n, want int }{{-5, DefaultLimit}, {0, DefaultLimit}, {1, 1}, {MaxLimit, MaxLimit}, {MaxLimit + 1, MaxLimit}, {1 << 40, MaxLimit}} {
		if got := Limit(tc.n); got != tc.want {
			t.Errorf("Limit(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}
