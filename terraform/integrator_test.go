package terraform

import (
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/autonomics/autonomics/services/integrator/integratorenv"
	"github.com/autonomics/autonomics/shared/ledger"
)

// integratorConcurrency is the integrator's concurrent requests per
// instance: Cloud Run's largest, since the group commit's batch is at
// most the pushes in flight.
const integratorConcurrency = 1000

// TestIntegratorLoopRuns holds what the group commit needs in production:
// one integrator instance always runs, with its CPU allocated between
// requests, its loop on (a pass interval above zero, an idle interval
// below half the lease so that an idle holder keeps its lease), taking
// Cloud Run's largest number of concurrent pushes. Without the loop every
// push would be recorded as pending (three writes instead of one) and
// wait for the scheduler's next call.
func TestIntegratorLoopRuns(t *testing.T) {
	each(t, func(t *testing.T, f *testFixture, c *tfConfig) {
		svc, ok := byAttr(c, "google_cloud_run_v2_service", "name")[c.Prefix+"autonomics-integrator"]
		if !ok {
			t.Fatalf("no Cloud Run service %sautonomics-integrator", c.Prefix)
		}
		tpl := svc.Body.One("template")
		if lo := tpl.One("scaling").Attr("min_instance_count"); lo == cty.NilVal || !lo.IsKnown() || lo.IsNull() || lo.LessThan(cty.NumberIntVal(1)).True() {
			t.Errorf("%s: min_instance_count = %#v, want at least 1 (the lease holder's loop)", svc.Addr(), lo)
		}
		if n := tpl.Attr("max_instance_request_concurrency"); n == cty.NilVal || !n.IsKnown() || n.IsNull() || !n.Equals(cty.NumberIntVal(integratorConcurrency)).True() {
			t.Errorf("%s: max_instance_request_concurrency = %#v, want %d (a batch is at most the pushes in flight)", svc.Addr(), n, integratorConcurrency)
		}
		for _, ct := range tpl.Sub("containers") {
			if v := ct.One("resources").Attr("cpu_idle"); v == cty.NilVal || !v.IsKnown() || v.IsNull() || v.True() {
				t.Errorf("%s: cpu_idle = %#v, want false (the loop runs between requests)", svc.Addr(), v)
			}
		}
		env := serviceEnv(svc)
		interval, err := time.ParseDuration(env[integratorenv.Interval])
		if err != nil || interval <= 0 {
			t.Errorf("%s: %s = %q, want a positive duration (the loop on)", svc.Addr(), integratorenv.Interval, env[integratorenv.Interval])
		}
		idle, err := time.ParseDuration(env[integratorenv.IdleInterval])
		if err != nil || idle < interval || idle >= ledger.DefaultLeaseTTL/2 {
			t.Errorf("%s: %s = %q, want a duration from the interval %v to below half the lease (%v)",
				svc.Addr(), integratorenv.IdleInterval, env[integratorenv.IdleInterval], interval, ledger.DefaultLeaseTTL/2)
		}
		// The other services keep scaling to zero with CPU only while
		// serving.
		for _, other := range c.Result.Find("google_cloud_run_v2_service") {
			if other == svc || other.Body.Str("name") != c.Prefix+"autonomics-query" && other.Body.Str("name") != c.Prefix+"autonomics-monitor" {
				continue
			}
			for _, ct := range other.Body.One("template").Sub("containers") {
				if v := ct.One("resources").Attr("cpu_idle"); v == cty.NilVal || !v.IsKnown() || v.IsNull() || !v.True() {
					t.Errorf("%s: cpu_idle = %#v, want true", other.Addr(), v)
				}
			}
		}
	})
}
