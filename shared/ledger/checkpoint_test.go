package ledger_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ledger"
)

var root = tlog.RecordHash([]byte("root"))

func TestParseCheckpoint(t *testing.T) {
	b64 := base64.StdEncoding.EncodeToString(root[:])
	tests := []struct {
		text string
		want ledger.Checkpoint
		ok   bool
	}{
		{"example.com/log\n20852163\n" + b64 + "\n", ledger.Checkpoint{Origin: "example.com/log", Size: 20852163, Root: root}, true},
		{"example.com/log\n0\n" + b64 + "\n", ledger.Checkpoint{Origin: "example.com/log", Size: 0, Root: root}, true},
		{"example.com/log\n5\n" + b64 + "\nextension line\n", ledger.Checkpoint{Origin: "example.com/log", Size: 5, Root: root}, true},
		{"example.com/log\n5\n" + b64, ledger.Checkpoint{}, false},
		{"example.com/log\n5\n" + b64 + "\n\n", ledger.Checkpoint{}, false},
		{"example.com/log\n05\n" + b64 + "\n", ledger.Checkpoint{}, false},
		{"example.com/log\n-5\n" + b64 + "\n", ledger.Checkpoint{}, false},
		{"example.com/log\n+5\n" + b64 + "\n", ledger.Checkpoint{}, false},
		{"example.com/log\n5\nnot base64!\n", ledger.Checkpoint{}, false},
		{"example.com/log\n5\n" + base64.StdEncoding.EncodeToString(root[:31]) + "\n", ledger.Checkpoint{}, false},
		{"\n5\n" + b64 + "\n", ledger.Checkpoint{}, false},
		{"example.com/log\n5\n", ledger.Checkpoint{}, false},
	}
	for _, tc := range tests {
		got, err := ledger.ParseCheckpoint([]byte(tc.text))
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseCheckpoint(%q) = %v, %v; want %v, ok %v", tc.text, got, err, tc.want, tc.ok)
		}
		if err != nil && fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("ParseCheckpoint(%q) error code = %q, want invalid", tc.text, fault.ErrorCode(err))
		}
		if tc.ok && !strings.Contains(tc.text, "extension") {
			if text := got.Text(); string(text) != tc.text {
				t.Errorf("ParseCheckpoint(%q).Text() = %q", tc.text, text)
			}
		}
	}
}

func TestSignAndOpenCheckpoint(t *testing.T) {
	skey, vkey, err := ledger.GenerateKey("example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, derived, err := ledger.NewSigner(skey)
	if err != nil || derived != vkey {
		t.Fatalf("NewSigner(key) = %q, %v; want verifier key %q", derived, err, vkey)
	}
	verifier, err := ledger.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _, err := ledger.GenerateKey("example.com/log")
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := ledger.NewSigner(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	cp := ledger.Checkpoint{Origin: "example.com/log", Size: 42, Root: root}
	signed, err := ledger.SignCheckpoint(cp, signer)
	if err != nil {
		t.Fatal(err)
	}
	byOther, err := ledger.SignCheckpoint(cp, other)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := ledger.SignCheckpoint(ledger.Checkpoint{Origin: "other.example/log", Size: 42, Root: root}, signer)
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Replace(signed, []byte("\n42\n"), []byte("\n43\n"), 1)
	tests := []struct {
		name string
		note []byte
		want fault.Code
	}{
		{"signed", signed, ""},
		{"signed by another key of the same name", byOther, fault.Conflict},
		{"origin other than the key name", foreign, fault.Conflict},
		{"size altered", altered, fault.Conflict},
		{"not a note", []byte("hello"), fault.Invalid},
	}
	for _, tc := range tests {
		got, err := ledger.OpenCheckpoint(tc.note, verifier)
		if fault.ErrorCode(err) != tc.want || (err == nil && got != cp) {
			t.Errorf("OpenCheckpoint(%s) = %v, %v; want code %q", tc.name, got, err, tc.want)
		}
	}
	if got, err := ledger.CheckpointOf(signed); err != nil || got != cp {
		t.Errorf("CheckpointOf(signed) = %v, %v; want %v", got, err, cp)
	}
	if _, err := ledger.SignCheckpoint(ledger.Checkpoint{Origin: "a\nb"}, signer); fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("SignCheckpoint(two-line origin) = %v, want invalid", err)
	}
	for _, bad := range []string{"", "PRIVATE+KEY+x", vkey} {
		if _, _, err := ledger.NewSigner(bad); fault.ErrorCode(err) != fault.Invalid {
			t.Errorf("NewSigner(%q) = %v, want invalid", bad, err)
		}
	}
	if _, _, err := ledger.GenerateKey("has space"); fault.ErrorCode(err) != fault.Invalid {
		t.Errorf("GenerateKey(%q) = %v, want invalid", "has space", err)
	}
}

func TestTilePath(t *testing.T) {
	tests := []struct {
		tile tlog.Tile
		path string
	}{
		{tlog.Tile{H: 8, L: 0, N: 0, W: 256}, "tile/0/000"},
		{tlog.Tile{H: 8, L: 2, N: 1234067, W: 256}, "tile/2/x001/x234/067"},
		{tlog.Tile{H: 8, L: 1, N: 5, W: 17}, "tile/1/005.p/17"},
		{tlog.Tile{H: 8, L: -1, N: 3, W: 256}, "tile/entries/003"},
		{tlog.Tile{H: 8, L: -1, N: 1000, W: 9}, "tile/entries/x001/000.p/9"},
	}
	for _, tc := range tests {
		if got := ledger.TilePath(tc.tile); got != tc.path {
			t.Errorf("TilePath(%+v) = %q, want %q", tc.tile, got, tc.path)
		}
		if got, err := ledger.ParseTilePath(tc.path); err != nil || got != tc.tile {
			t.Errorf("ParseTilePath(%q) = %+v, %v; want %+v", tc.path, got, err, tc.tile)
		}
	}
	for _, bad := range []string{"tile/8/0/000", "tile/0/0", "tiles/0/000", "tile/0/000.p/256", "tile/0/000.p/0", "tile/entries/x000/001"} {
		if got, err := ledger.ParseTilePath(bad); err == nil {
			t.Errorf("ParseTilePath(%q) = %+v, want an error", bad, got)
		}
	}
}

func TestBundle(t *testing.T) {
	leaves := [][]byte{[]byte(`{"a":1}`), {}, bytes.Repeat([]byte("x"), 300)}
	b, err := ledger.EncodeBundle(leaves)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 0 || b[1] != 7 {
		t.Errorf("EncodeBundle: first length prefix = % x, want 00 07", b[:2])
	}
	got, err := ledger.DecodeBundle(b)
	if err != nil || len(got) != 3 || !bytes.Equal(got[0], leaves[0]) || len(got[1]) != 0 || !bytes.Equal(got[2], leaves[2]) {
		t.Errorf("DecodeBundle(EncodeBundle(leaves)) = %q, %v", got, err)
	}
	for _, bad := range [][]byte{{0}, {0, 5, 'a'}} {
		if got, err := ledger.DecodeBundle(bad); err == nil {
			t.Errorf("DecodeBundle(% x) = %q, want an error", bad, got)
		}
	}
	if _, err := ledger.EncodeBundle([][]byte{make([]byte, ledger.MaxLeafBytes+1)}); err == nil {
		t.Errorf("EncodeBundle(oversized leaf) = nil error")
	}
}
