package caller

import (
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"
)

func token(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return "Bearer " + enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(payload)) + ".sig"
}

func TestEmail(t *testing.T) {
	tests := []struct {
		name                 string
		serverless, ordinary string
		want                 string
	}{
		{"authorization", "", token(`{"email":"a@x.iam.gserviceaccount.com"}`), "a@x.iam.gserviceaccount.com"},
		{"serverless header wins", token(`{"email":"checked@x"}`), token(`{"email":"forged@x"}`), "checked@x"},
		{"no token", "", "", ""},
		{"not bearer", "", "Basic abc", ""},
		{"duplicate claim", "", token(`{"email":"a@x","email":"b@x"}`), ""},
		{"spaces", "", token(`{"email":"a b@x"}`), ""},
		{"not JSON", "", "Bearer a.bm90IGpzb24.c", ""},
		{"too long", "", "Bearer " + strings.Repeat("a", MaxTokenBytes+1), ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		if tt.serverless != "" {
			r.Header.Set(HeaderServerlessAuthorization, tt.serverless)
		}
		if tt.ordinary != "" {
			r.Header.Set(HeaderAuthorization, tt.ordinary)
		}
		if got := Email(r); got != tt.want {
			t.Errorf("%s: Email = %q, want %q", tt.name, got, tt.want)
		}
	}
}
