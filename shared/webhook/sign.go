package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Secret serialization and signature version of the symmetric scheme.
const (
	// SecretPrefix starts a serialized secret: "whsec_" and the key in
	// standard base64.
	SecretPrefix = "whsec_"
	// SignatureVersion prefixes each HMAC-SHA256 signature.
	SignatureVersion = "v1"
)

// Bounds of a secret's key, in bytes.
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// DefaultTolerance is how far a webhook-timestamp may be from the
// receiver's clock before Verify refuses it, against replays.
const DefaultTolerance = 5 * time.Minute

// Secret is an HMAC-SHA256 signing key. Its String method does not reveal
// it; Encode does.
type Secret struct {
	key []byte
}

// ParseSecret parses "whsec_<base64>" (the prefix may be omitted, as the
// reference libraries allow). The key must be 24 to 64 bytes. The error
// never repeats the input.
func ParseSecret(s string) (Secret, error) {
	const op = "webhook.ParseSecret"
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, SecretPrefix))
	if err != nil {
		return Secret{}, fault.Errorf(fault.Invalid, op, "a secret is %q followed by standard base64", SecretPrefix)
	}
	if len(b) < MinSecretBytes || len(b) > MaxSecretBytes {
		return Secret{}, fault.Errorf(fault.Invalid, op, "a secret's key is %d to %d bytes, this one %d", MinSecretBytes, MaxSecretBytes, len(b))
	}
	return Secret{key: b}, nil
}

// NewSecret returns a new random 32-byte secret.
func NewSecret() Secret {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return Secret{key: b}
}

// Encode returns the secret in its serialized form, "whsec_<base64>".
func (s Secret) Encode() string { return SecretPrefix + base64.StdEncoding.EncodeToString(s.key) }

// String returns a redacted form that identifies the secret without
// revealing it: "whsec_…" and the first 8 hex digits of the key's SHA-256.
func (s Secret) String() string { return SecretPrefix + "…" + Fingerprint(s) }

// Fingerprint returns the first 8 hex digits of the SHA-256 of the key.
func Fingerprint(s Secret) string {
	sum := sha256.Sum256(s.key)
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 8)
	for i := range 4 {
		out[2*i], out[2*i+1] = hexdigits[sum[i]>>4], hexdigits[sum[i]&15]
	}
	return string(out)
}

// sign returns the base64 HMAC-SHA256 of "id.timestamp.body" under key.
func sign(key []byte, id, ts string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Sign returns the webhook-signature header value of a message: one
// "v1,<signature>" per secret, space-separated, in the order given.
func Sign(id string, ts time.Time, body []byte, secrets ...Secret) string {
	t := strconv.FormatInt(ts.Unix(), 10)
	parts := make([]string, len(secrets))
	for i, s := range secrets {
		parts[i] = SignatureVersion + "," + sign(s.key, id, t, body)
	}
	return strings.Join(parts, " ")
}

// Headers sets the three Standard Webhooks headers of a message on h.
func Headers(h http.Header, id string, ts time.Time, body []byte, secrets ...Secret) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, Sign(id, ts, body, secrets...))
}

// Verify checks the Standard Webhooks headers of a received message
// against its raw body: the timestamp must be within tolerance of now
// (DefaultTolerance when tolerance is 0; negative skips the check), and
// one of the space-separated "v1," signatures must be that of one of the
// secrets, compared in constant time. Signatures of other versions are
// ignored. Every failure is an Invalid *fault.Error.
func Verify(h http.Header, body []byte, now time.Time, tolerance time.Duration, secrets ...Secret) error {
	const op = "webhook.Verify"
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	switch {
	case id == "":
		return fault.Errorf(fault.Invalid, op, "missing %s", HeaderID)
	case ts == "":
		return fault.Errorf(fault.Invalid, op, "missing %s", HeaderTimestamp)
	case sigs == "":
		return fault.Errorf(fault.Invalid, op, "missing %s", HeaderSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fault.Errorf(fault.Invalid, op, "%s is not integer Unix seconds", HeaderTimestamp)
	}
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	if tolerance > 0 {
		d := now.Sub(time.Unix(sec, 0))
		// Abs, not -d: the distance to a time centuries away saturates
		// at the most negative Duration, whose negation is itself.
		if d.Abs() >= tolerance {
			return fault.Errorf(fault.Invalid, op, "%s is %v away from now, tolerance %v", HeaderTimestamp, d.Round(time.Second), tolerance)
		}
	}
	for _, s := range secrets {
		want := []byte(sign(s.key, id, ts, body))
		for _, sig := range strings.Fields(sigs) {
			version, value, ok := strings.Cut(sig, ",")
			if ok && version == SignatureVersion && subtle.ConstantTimeCompare([]byte(value), want) == 1 {
				return nil
			}
		}
	}
	return fault.Errorf(fault.Invalid, op, "no signature matches")
}
