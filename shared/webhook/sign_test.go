package webhook_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/webhook"
)

// The test vectors of the Standard Webhooks reference libraries.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	// vectorWrong is a well-formed signature of nothing here.
	vectorWrong = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
)

func mustSecret(t *testing.T, s string) webhook.Secret {
	t.Helper()
	sec, err := webhook.ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

func TestSignMatchesStandardWebhooksVector(t *testing.T) {
	for _, s := range []string{vectorSecret, strings.TrimPrefix(vectorSecret, webhook.SecretPrefix)} {
		got := webhook.Sign(vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload), mustSecret(t, s))
		if got != vectorSignature {
			t.Errorf("Sign with %q = %q, want %q", s, got, vectorSignature)
		}
	}
}

func TestVerifyStandardWebhooksVectors(t *testing.T) {
	sec := mustSecret(t, vectorSecret)
	now := time.Now()
	headers := func(ts time.Time) http.Header {
		h := http.Header{}
		webhook.Headers(h, vectorID, ts, []byte(vectorPayload), sec)
		return h
	}
	tests := []struct {
		name      string
		h         http.Header
		tolerance time.Duration
		ok        bool
	}{
		{"valid signature is valid", headers(now), 0, true},
		{"missing id", func() http.Header { h := headers(now); h.Del(webhook.HeaderID); return h }(), 0, false},
		{"missing timestamp", func() http.Header { h := headers(now); h.Del(webhook.HeaderTimestamp); return h }(), 0, false},
		{"missing signature", func() http.Header { h := headers(now); h.Del(webhook.HeaderSignature); return h }(), 0, false},
		{"invalid signature", func() http.Header { h := headers(now); h.Set(webhook.HeaderSignature, vectorWrong); return h }(), 0, false},
		{"old timestamp fails", headers(now.Add(-webhook.DefaultTolerance)), 0, false},
		{"new timestamp fails", headers(now.Add(webhook.DefaultTolerance + time.Second)), 0, false},
		{"valid among several signatures", func() http.Header {
			h := headers(now)
			h.Set(webhook.HeaderSignature, strings.Join([]string{vectorWrong, "v2," + vectorWrong[3:], h.Get(webhook.HeaderSignature), vectorWrong}, " "))
			return h
		}(), 0, true},
		{"old timestamp passes without tolerance", headers(now.Add(-webhook.DefaultTolerance)), -1, true},
		{"changed timestamp fails without tolerance", func() http.Header {
			h := headers(now)
			h.Set(webhook.HeaderTimestamp, fmt.Sprint(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Unix()))
			return h
		}(), -1, false},
		{"reference vector", http.Header{
			"Webhook-Id": {vectorID}, "Webhook-Timestamp": {fmt.Sprint(vectorTimestamp)}, "Webhook-Signature": {vectorSignature},
		}, -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := webhook.Verify(tt.h, []byte(vectorPayload), now, tt.tolerance, sec)
			if (err == nil) != tt.ok {
				t.Errorf("Verify = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestRotationSignsWithBothSecrets(t *testing.T) {
	old, cur := webhook.NewSecret(), webhook.NewSecret()
	now := time.Now()
	h := http.Header{}
	webhook.Headers(h, "id-1", now, []byte(`{}`), cur, old)
	if n := len(strings.Fields(h.Get(webhook.HeaderSignature))); n != 2 {
		t.Fatalf("webhook-signature %q has %d signatures, want 2", h.Get(webhook.HeaderSignature), n)
	}
	for name, s := range map[string]webhook.Secret{"current": cur, "old": old} {
		if err := webhook.Verify(h, []byte(`{}`), now, 0, s); err != nil {
			t.Errorf("a receiver holding only the %s secret: %v", name, err)
		}
	}
	if err := webhook.Verify(h, []byte(`{}`), now, 0, webhook.NewSecret()); err == nil {
		t.Error("a third secret verified")
	}
}

func TestParseSecret(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{vectorSecret, true},
		{webhook.NewSecret().Encode(), true},
		{"whsec_c2hvcnQ=", false},                      // 5 bytes
		{"whsec_" + strings.Repeat("QUFB", 30), false}, // 90 bytes
		{"whsec_not base64!", false},
		{"", false},
	}
	for _, tt := range tests {
		_, err := webhook.ParseSecret(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseSecret(%q) = %v, want ok %v", tt.in, err, tt.ok)
		}
		if err != nil && tt.in != "" && strings.Contains(err.Error(), strings.TrimPrefix(tt.in, "whsec_")) {
			t.Errorf("ParseSecret's error %q repeats the secret", err)
		}
	}
	if s := webhook.NewSecret(); strings.Contains(s.String(), s.Encode()[6:]) {
		t.Errorf("Secret.String %q reveals the key", s.String())
	}
}

// A message stamped centuries ahead is a replay that never expires: the
// distance to it overflows time.Duration, and its negation too, so a
// check of both directions by negating the difference let it through.
func TestVerifyRefusesFarFutureTimestampReplay(t *testing.T) {
	secret, err := webhook.ParseSecret(vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(vectorTimestamp, 0)
	body := []byte(vectorPayload)
	for _, ts := range []time.Time{time.Unix(1<<40, 0), now.AddDate(300, 0, 0)} {
		h := http.Header{}
		webhook.Headers(h, vectorID, ts, body, secret)
		if err := webhook.Verify(h, body, now, 0, secret); err == nil {
			t.Errorf("Verify(timestamp %s) = nil, want a refusal", h.Get(webhook.HeaderTimestamp))
		}
	}
}
