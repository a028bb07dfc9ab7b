package firestore

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/autonomics/autonomics/shared/alerting"
	"github.com/autonomics/autonomics/shared/alerting/alertingtest"
)

func TestAlertStoreConformance(t *testing.T) {
	c := emulatorClient(t)
	alertingtest.RunConformanceTests(t, func(t *testing.T) alerting.Store {
		s, err := NewAlertStore(c, AlertStoreOptions{Namespace: fmt.Sprintf("t-%08x", rand.Uint32())})
		if err != nil {
			t.Fatalf("NewAlertStore = %v", err)
		}
		return s
	})
}
