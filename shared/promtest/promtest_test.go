package promtest_test

import (
	"testing"
	"time"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/promtest"
)

func TestWriteThenQuery(t *testing.T) {
	s := promtest.Start(t)
	name := promtest.UniqueName("promtest_value")
	now := time.Now().Truncate(time.Second)
	s.Write(t,
		alerting.Sample{Name: name, Labels: alerting.Labels{"tenant": "acme"}, Value: 1, Time: now.Add(-time.Minute)},
		alerting.Sample{Name: name, Labels: alerting.Labels{"tenant": "acme"}, Value: 2.5, Time: now},
	)
	got, err := s.Querier().Query(t.Context(), name, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Value != 2.5 || got[0].Labels["tenant"] != "acme" || len(got[0].Labels) != 1 {
		t.Errorf("query = %+v, want one series {tenant=acme} 2.5", got)
	}
	s.Stop()
	if _, err := s.Querier().Query(t.Context(), name, now); err == nil {
		t.Error("query of a stopped server = nil error, want one")
	}
}
