package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
)

// Checkpoint is the body of a C2SP tlog-checkpoint: the log's origin, its
// tree size and the root hash of the tree of that size.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// EmptyRoot is the root hash of the empty tree: the SHA-256 of no bytes.
var EmptyRoot, _ = tlog.TreeHash(0, nil)

// Text returns the checkpoint's note text: origin, size and base64 root,
// each on its own line.
func (c Checkpoint) Text() []byte {
	b := make([]byte, 0, len(c.Origin)+70)
	b = append(b, c.Origin...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, c.Size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, c.Root[:])
	return append(b, '\n')
}

// String returns "origin@size root".
func (c Checkpoint) String() string {
	return c.Origin + "@" + strconv.FormatInt(c.Size, 10) + " " + c.Root.String()
}

// ParseCheckpoint parses the text of a checkpoint note (without its
// signatures). Extension lines after the root hash are allowed and
// ignored, as C2SP tlog-checkpoint says; each must be non-empty.
func ParseCheckpoint(text []byte) (Checkpoint, error) {
	const op = "ledger.ParseCheckpoint"
	bad := func(format string, args ...any) (Checkpoint, error) {
		return Checkpoint{}, fault.Errorf(fault.Invalid, op, format, args...)
	}
	if !bytes.HasSuffix(text, []byte("\n")) {
		return bad("checkpoint text does not end with a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return bad("checkpoint has %d lines, want origin, size and root hash", len(lines))
	}
	for i, l := range lines {
		if l == "" {
			return bad("line %d of the checkpoint is empty", i+1)
		}
	}
	var c Checkpoint
	c.Origin = lines[0]
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return bad("tree size %s is not a decimal integer without leading zeros", httpjson.Quote(lines[1]))
	}
	c.Size = n
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return bad("root hash %s is not the base64 of 32 bytes", httpjson.Quote(lines[2]))
	}
	copy(c.Root[:], h)
	return c, nil
}

// SignCheckpoint returns c as a signed note, signed by s.
func SignCheckpoint(c Checkpoint, s note.Signer) ([]byte, error) {
	const op = "ledger.SignCheckpoint"
	if c.Origin == "" || strings.ContainsAny(c.Origin, "\n") {
		return nil, fault.Errorf(fault.Invalid, op, "origin %s must be one non-empty line", httpjson.Quote(c.Origin))
	}
	msg, err := note.Sign(&note.Note{Text: string(c.Text())}, s)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, op, err)
	}
	return msg, nil
}

// OpenCheckpoint verifies that signed is a checkpoint note signed by v and
// returns its body. The checkpoint's origin must be v's key name, as C2SP
// tlog-checkpoint recommends, so that a checkpoint of another log signed
// by the same key is not mistaken for this log's. Signatures by other keys
// are ignored. Failures are fault.Conflict errors (the document
// contradicts the key), or fault.Invalid for text that is not a note.
func OpenCheckpoint(signed []byte, v note.Verifier) (Checkpoint, error) {
	const op = "ledger.OpenCheckpoint"
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return Checkpoint{}, fault.Errorf(fault.Conflict, op, "checkpoint carries no signature by key %s", v.Name())
		case errors.As(err, &invalid):
			return Checkpoint{}, fault.Errorf(fault.Conflict, op, "checkpoint signature by key %s is invalid", v.Name())
		}
		return Checkpoint{}, fault.Errorf(fault.Invalid, op, "checkpoint is not a signed note: %v", err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if c.Origin != v.Name() {
		return Checkpoint{}, fault.Errorf(fault.Conflict, op, "checkpoint origin %s is not the key name %q", httpjson.Quote(c.Origin), v.Name())
	}
	return c, nil
}

// GenerateKey returns a new Ed25519 note signer key and its verifier key,
// both named origin, in the text forms note.NewSigner and note.NewVerifier
// accept.
// The origin must be a valid key name: not empty, without spaces or '+'.
func GenerateKey(origin string) (signer, verifier string, err error) {
	const op = "ledger.GenerateKey"
	if origin == "" || strings.ContainsFunc(origin, func(r rune) bool { return r == '+' || unicode.IsSpace(r) }) || !utf8.ValidString(origin) {
		return "", "", fault.Errorf(fault.Invalid, op, "origin %q cannot name a key: it must be non-empty, without spaces or '+'", origin)
	}
	signer, verifier, err = note.GenerateKey(rand.Reader, origin)
	if err != nil {
		return "", "", fault.Wrap(fault.Internal, op, err)
	}
	return signer, verifier, nil
}

// NewSigner parses a note signer key (as GenerateKey returns it) and
// returns the signer and its verifier key.
func NewSigner(key string) (s note.Signer, verifierKey string, err error) {
	const op = "ledger.NewSigner"
	key = strings.TrimSpace(key)
	s, err = note.NewSigner(key)
	if err != nil {
		return nil, "", fault.Errorf(fault.Invalid, op, "malformed signer key: %v", err)
	}
	// NewSigner checked the format: PRIVATE+KEY+name+hash+base64(alg || seed).
	parts := strings.SplitN(key, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize {
		return nil, "", fault.Errorf(fault.Invalid, op, "signer key is not an Ed25519 key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	verifierKey, err = note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, "", fault.Wrap(fault.Internal, op, err)
	}
	return s, verifierKey, nil
}

// NewVerifier parses a note verifier key.
func NewVerifier(key string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(key))
	if err != nil {
		return nil, fault.Errorf(fault.Invalid, "ledger.NewVerifier", "malformed verifier key: %v", err)
	}
	return v, nil
}
