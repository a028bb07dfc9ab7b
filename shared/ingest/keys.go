package ingest

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/httpjson"
)

// HMAC keys are written as Standard Webhooks writes its secrets: KeyPrefix
// followed by the standard base64 of MinKeyBytes to MaxKeyBytes random
// bytes.
const (
	KeyPrefix   = "whsec_"
	MinKeyBytes = 24
	MaxKeyBytes = 64
)

// SignatureVersion starts every signature of the webhook-signature
// header: "v1," then the base64 HMAC-SHA256.
const SignatureVersion = "v1"

// Keys are HMAC keys by key id.
type Keys map[string][]byte

// ParseKeys parses HMAC keys: a JSON object from key id to key, e.g.
// {"billing-1": "whsec_…"}. In production it is the value of a Secret
// Manager secret. Duplicate key ids and malformed keys are refused; every
// error is an Invalid *fault.Error that never quotes a key.
func ParseKeys(data []byte) (Keys, error) {
	const op = "ingest.ParseKeys"
	var raw map[string]string
	if err := httpjson.Unmarshal(bytes.TrimSpace(data), &raw); err != nil {
		// The message may quote a key: say only where the error is.
		return nil, fault.Errorf(fault.Invalid, op, "HMAC keys are not a JSON object from key id to key (duplicate, non-string or malformed members are refused)")
	}
	keys := make(Keys, len(raw))
	for id, v := range raw {
		if !keyIDPattern.MatchString(id) {
			return nil, fault.Errorf(fault.Invalid, op, "key id %s: must match %s", httpjson.Quote(id), keyIDPattern)
		}
		b64, ok := strings.CutPrefix(v, KeyPrefix)
		if !ok {
			return nil, fault.Errorf(fault.Invalid, op, "key %s: must start with %q", id, KeyPrefix)
		}
		k, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			return nil, fault.Errorf(fault.Invalid, op, "key %s: not standard base64 after %q", id, KeyPrefix)
		}
		if len(k) < MinKeyBytes || len(k) > MaxKeyBytes {
			return nil, fault.Errorf(fault.Invalid, op, "key %s: %d bytes, want %d to %d", id, len(k), MinKeyBytes, MaxKeyBytes)
		}
		keys[id] = k
	}
	return keys, nil
}

// GenerateKey returns a new random HMAC key of 32 bytes, written with
// KeyPrefix.
func GenerateKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fault.Wrap(fault.Internal, "ingest.GenerateKey", err)
	}
	return KeyPrefix + base64.StdEncoding.EncodeToString(b[:]), nil
}

// Sign returns the signature of a request as the webhook-signature header
// carries it: "v1," and the standard base64 of the HMAC-SHA256, under key,
// of the webhook id, ".", the Unix timestamp in decimal, ".", and the body.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	return SignatureVersion + "," + base64.StdEncoding.EncodeToString(mac(key, id, strconv.FormatInt(timestamp, 10), body))
}

// mac is the HMAC-SHA256 of id.timestamp.body.
func mac(key []byte, id, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}
