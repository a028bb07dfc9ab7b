package ingest_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/ingest"
	"github.com/autonomics/autonomics/shared/machines"
	"github.com/autonomics/autonomics/shared/store"
)

func TestParseRules(t *testing.T) {
	ms := machines.New(nil)
	rule := func(fields string) string {
		return `[{"name": "p", "class": "external", "email": "p@x.iam.gserviceaccount.com", "types": ["autonomics.billing.*"], "tenants": ["*"]` + fields + `}]`
	}
	tests := []struct {
		name, in, wantErr string
	}{
		{name: "test rules", in: testRules},
		{name: "exact type", in: `[{"name": "p", "class": "external", "key_ids": ["k"], "types": ["autonomics.billing.payment_failed"], "tenants": ["acme"]}]`},
		{name: "nulls from terraform", in: `[{"name": "p", "class": "marketplace", "email": null, "key_ids": ["k"], "types": ["autonomics.entitlement.*"], "tenants": ["*"], "rate": null, "burst": null}]`},
		{name: "empty", in: `[]`},
		{name: "not JSON", in: `[{`, wantErr: "producer rules"},
		{name: "duplicate member", in: `[{"name": "p", "name": "q", "class": "external", "email": "p@x", "types": ["autonomics.billing.*"], "tenants": ["*"]}]`, wantErr: `duplicate member "name"`},
		{name: "unknown field", in: rule(`, "role": "admin"`), wantErr: "unknown field"},
		{name: "bad name", in: `[{"name": "Bad/Name", "class": "external", "email": "p@x", "types": ["autonomics.billing.*"], "tenants": ["*"]}]`, wantErr: "producer name"},
		{name: "internal class", in: `[{"name": "p", "class": "governor", "email": "p@x", "types": ["autonomics.billing.*"], "tenants": ["*"]}]`, wantErr: "want external or marketplace"},
		{name: "no identity", in: `[{"name": "p", "class": "external", "types": ["autonomics.billing.*"], "tenants": ["*"]}]`, wantErr: "no identity"},
		{name: "bad email", in: `[{"name": "p", "class": "external", "email": "nobody", "types": ["autonomics.billing.*"], "tenants": ["*"]}]`, wantErr: "not an email address"},
		{name: "bad key id", in: `[{"name": "p", "class": "external", "key_ids": ["a b"], "types": ["autonomics.billing.*"], "tenants": ["*"]}]`, wantErr: "key id"},
		{name: "no types", in: `[{"name": "p", "class": "external", "email": "p@x", "types": [], "tenants": ["*"]}]`, wantErr: "no types"},
		{name: "any type", in: `[{"name": "p", "class": "external", "email": "p@x", "types": ["*"], "tenants": ["*"]}]`, wantErr: "want autonomics.<domain>.<event>"},
		{name: "unknown domain", in: `[{"name": "p", "class": "external", "email": "p@x", "types": ["autonomics.payroll.*"], "tenants": ["*"]}]`, wantErr: "want autonomics.<domain>.<event>"},
		{name: "unknown event", in: `[{"name": "p", "class": "external", "email": "p@x", "types": ["autonomics.billing.teleported"], "tenants": ["*"]}]`, wantErr: "has no event"},
		{name: "internal-only event", in: `[{"name": "p", "class": "external", "email": "p@x", "types": ["autonomics.multi_tenant.suspend"], "tenants": ["*"]}]`, wantErr: "does not take it from a sender of class external"},
		{name: "timeout", in: `[{"name": "p", "class": "external", "email": "p@x", "types": ["autonomics.subscription.timeout.trial_end"], "tenants": ["*"]}]`, wantErr: "does not take it"},
		{name: "provider event for marketplace", in: `[{"name": "p", "class": "marketplace", "email": "p@x", "types": ["autonomics.billing.payment_failed"], "tenants": ["*"]}]`, wantErr: "class marketplace"},
		{name: "no tenants", in: `[{"name": "p", "class": "external", "email": "p@x", "types": ["autonomics.billing.*"], "tenants": []}]`, wantErr: "no tenants"},
		{name: "bad tenant", in: `[{"name": "p", "class": "external", "email": "p@x", "types": ["autonomics.billing.*"], "tenants": ["../x"]}]`, wantErr: "tenant id"},
		{name: "star with others", in: `[{"name": "p", "class": "external", "email": "p@x", "types": ["autonomics.billing.*"], "tenants": ["*", "acme"]}]`, wantErr: "stands alone"},
		{name: "negative rate", in: rule(`, "rate": -1`), wantErr: "rate"},
		{name: "huge burst", in: rule(`, "burst": 1000000`), wantErr: "burst"},
		{name: "duplicate name", in: `[{"name": "p", "class": "external", "email": "p@x", "types": ["autonomics.billing.*"], "tenants": ["*"]},
		  {"name": "p", "class": "external", "email": "q@x", "types": ["autonomics.billing.*"], "tenants": ["*"]}]`, wantErr: "listed twice"},
		{name: "shared email", in: `[{"name": "p", "class": "external", "email": "p@x", "types": ["autonomics.billing.*"], "tenants": ["*"]},
		  {"name": "q", "class": "external", "email": "P@X", "types": ["autonomics.billing.*"], "tenants": ["*"]}]`, wantErr: "share the email"},
		{name: "shared key id", in: `[{"name": "p", "class": "external", "key_ids": ["k"], "types": ["autonomics.billing.*"], "tenants": ["*"]},
		  {"name": "q", "class": "external", "key_ids": ["k"], "types": ["autonomics.billing.*"], "tenants": ["*"]}]`, wantErr: "share the key id"},
		{name: "null producer", in: `[null]`, wantErr: "is null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ingest.ParseRules([]byte(tt.in), ms)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseRules = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || fault.ErrorCode(err) != fault.Invalid {
				t.Fatalf("ParseRules = %v, %v; want an invalid error containing %q", r, err, tt.wantErr)
			}
		})
	}
}

func TestProducerDefaultsAndSources(t *testing.T) {
	r, err := ingest.ParseRules([]byte(testRules), machines.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	if p := r.ByEmail(strings.ToUpper(billingEmail)); p == nil || p.Source() != "ingest/billing" || p.Rate != ingest.DefaultRate || p.Burst != ingest.DefaultBurst {
		t.Errorf("ByEmail(billing) = %+v, want billing with source ingest/billing and the default rate", p)
	}
	if p := r.ByKeyID(adapterKeyID); p == nil || p.Source() != "marketplace/adapter" {
		t.Errorf("ByKeyID(adapter) = %+v, want the adapter with source marketplace/adapter", p)
	}
	if got := r.KeyIDs(); strings.Join(got, ",") != adapterKeyID+","+billingKeyID {
		t.Errorf("KeyIDs = %q", got)
	}
}

func TestParseKeys(t *testing.T) {
	key := ingest.KeyPrefix + base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name, in, wantErr string
	}{
		{name: "ok", in: `{"k1": "` + key + `", "k2": "` + key + `"}`},
		{name: "empty", in: `{}`},
		{name: "duplicate", in: `{"k1": "` + key + `", "k1": "` + key + `"}`, wantErr: "not a JSON object"},
		{name: "not a string", in: `{"k1": 3}`, wantErr: "not a JSON object"},
		{name: "no prefix", in: `{"k1": "` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}`, wantErr: `must start with "whsec_"`},
		{name: "not base64", in: `{"k1": "whsec_***"}`, wantErr: "not standard base64"},
		{name: "short", in: `{"k1": "whsec_` + base64.StdEncoding.EncodeToString(make([]byte, 8)) + `"}`, wantErr: "8 bytes"},
		{name: "bad id", in: `{"a b": "` + key + `"}`, wantErr: "key id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ingest.ParseKeys([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseKeys = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseKeys = %v, want an error containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "AAAA") {
				t.Errorf("the error quotes the key: %v", err)
			}
		})
	}
}

func TestGenerateKeyParses(t *testing.T) {
	k, err := ingest.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ingest.ParseKeys([]byte(`{"k": "` + k + `"}`))
	if err != nil || len(keys["k"]) != 32 {
		t.Fatalf("ParseKeys(GenerateKey) = %v, %v", keys, err)
	}
}

// TestSignMatchesStandardWebhooks checks Sign against a signature
// computed by hand from the Standard Webhooks recipe.
func TestSignMatchesStandardWebhooks(t *testing.T) {
	key, _ := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	got := ingest.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

// nopPublisher publishes nothing.
type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, store.Message) error { return nil }

func TestNewRefusesIncompleteOptions(t *testing.T) {
	rules, err := ingest.ParseRules([]byte(testRules), machines.New(nil))
	if err != nil {
		t.Fatal(err)
	}
	pub := nopPublisher{}
	tokens, err := ingest.NewGoogleTokens(context.Background(), testAudience)
	if err != nil {
		t.Fatal(err)
	}
	keys := ingest.Keys{billingKeyID: make([]byte, 32), adapterKeyID: make([]byte, 32)}
	for _, tc := range []struct {
		name string
		o    ingest.Options
		want string
	}{
		{"no rules", ingest.Options{Publisher: pub}, "required"},
		{"no publisher", ingest.Options{Rules: rules}, "required"},
		{"missing key", ingest.Options{Rules: rules, Publisher: pub, Tokens: tokens, Keys: ingest.Keys{billingKeyID: make([]byte, 32)}}, "adapter-1"},
		{"no verifier", ingest.Options{Rules: rules, Publisher: pub, Keys: keys}, "no token verifier"},
	} {
		if _, err := ingest.New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := ingest.New(ingest.Options{Rules: rules, Publisher: pub, Tokens: tokens, Keys: keys}); err != nil {
		t.Errorf("New with complete options = %v", err)
	}
	if _, err := ingest.NewGoogleTokens(context.Background(), " "); err == nil {
		t.Errorf("NewGoogleTokens with a blank audience succeeded; it would accept tokens for any audience")
	}
}
