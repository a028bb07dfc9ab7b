package memstore_test

import (
	"testing"

	"github.com/autonomics/autonomics/shared/ledger/ledgertest"
	"github.com/autonomics/autonomics/shared/memstore"
)

func TestWitnessConformance(t *testing.T) {
	ledgertest.RunWitnessTests(t, func(t *testing.T) ledgertest.WitnessStore { return memstore.New() })
}
