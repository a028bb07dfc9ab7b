package signup

import (
	"context"
	"testing"

	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

// BenchmarkVerify measures the verification of a valid token with the
// keys cached: parsing, the RS256 signature and the claims checks.
func BenchmarkVerify(b *testing.B) {
	cs := newCertServer(b)
	clock := webhooktest.NewClock()
	v := newVerifier(b, cs, clock)
	tok := cs.valid(b, clock.Now())
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
