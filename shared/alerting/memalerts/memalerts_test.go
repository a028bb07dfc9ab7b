package memalerts

import (
	"testing"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/alerting/alertingtest"
)

func TestConformance(t *testing.T) {
	alertingtest.RunConformanceTests(t, func(t *testing.T) alerting.Store { return New() })
}
