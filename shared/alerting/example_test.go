package alerting_test

import (
	"fmt"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
)

// Example compiles a simple policy to PromQL and evaluates it twice, a
// minute apart, over the answers a metrics engine gave: the alert goes
// pending, then fires and records a notification.
func Example() {
	start := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)
	policy, err := alerting.ParsePolicy("cpu-high", []byte(`{"metric":"cpu","comparison":"gt","threshold":0.8,"for":"1m","severity":"critical"}`))
	if err != nil {
		panic(err)
	}
	queries := policy.Compile(alerting.CompileOptions{})
	fmt.Println(queries[0].Expr)
	answer := [][]alerting.Element{{{Labels: alerting.Labels{"tenant": "acme"}, Value: 0.93}}}
	var alerts []alerting.Alert
	for i := range 2 {
		now := start.Add(time.Duration(i) * time.Minute)
		results := map[string][]alerting.Active{policy.Name: policy.Activate(queries, answer)}
		out := alerting.Evaluate(alerting.Input{Now: now, Policies: []alerting.Policy{policy}, Results: results, Alerts: alerts})
		alerts = out.Put
		for _, a := range out.Put {
			fmt.Println(a.Fingerprint, a.State, len(out.Notifications))
		}
	}
	// Output:
	// last_over_time(cpu[5m]) > 0.8
	// c044d5db47048741 pending 0
	// c044d5db47048741 firing 1
}
