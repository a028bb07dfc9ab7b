package firestore

import (
	"testing"

	"github.com/autonomics/autonomics/shared/ledger/ledgertest"
)

func TestWitnessConformance(t *testing.T) {
	s := New(emulatorClient(t), Options{})
	ledgertest.RunWitnessTests(t, func(t *testing.T) ledgertest.WitnessStore { return s })
}
