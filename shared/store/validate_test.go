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

func TestCompareMarkers(t *testing.T) {
	h1, h2 := strings.Repeat("1", 64), strings.Repeat("2", 64)
	tests := []struct {
		a, b string
		want int
	}{
		{"t/" + h1, "t/" + h1, 0},
		{"t/" + h1, "t/" + h2, -1},
		{"t/" + h2, "t/" + h1, 1},
		// By tenant first: "t" before "t-a" and "t.b" although '-' and
		// '.' sort before '/'.
		{"t/" + h2, "t-a/" + h1, -1},
		{"t.b/" + h1, "t/" + h2, 1},
		{"t-a/" + h1, "t.b/" + h1, -1},
		{"t0/" + h1, "t/" + h2, 1},
	}
	for _, tc := range tests {
		if got := CompareMarkers(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareMarkers(%.5s…, %.5s…) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
