package alerting_test

import (
	"fmt"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
)

// Example evaluates one policy over two samples a minute apart: the alert
// goes pending, then fires and records a notification.
func Example() {
	start := time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)
	policy, err := alerting.ParsePolicy("cpu-high", []byte(`{"metric":"cpu","comparison":"gt","threshold":0.8,"for":"1m","severity":"critical"}`))
	if err != nil {
		panic(err)
	}
	series := alerting.NewSeriesSet(start, alerting.SeriesOptions{})
	var alerts []alerting.Alert
	for i := range 2 {
		now := start.Add(time.Duration(i) * time.Minute)
		_ = series.Add(alerting.Sample{Name: "cpu", Labels: alerting.Labels{"tenant": "acme"}, Value: 0.93, Time: now})
		out := alerting.Evaluate(alerting.Input{Now: now, Policies: []alerting.Policy{policy}, Series: series, Alerts: alerts})
		alerts = out.Put
		for _, a := range out.Put {
			fmt.Println(a.Fingerprint, a.State, len(out.Notifications))
		}
	}
	// Output:
	// c044d5db47048741 pending 0
	// c044d5db47048741 firing 1
}
