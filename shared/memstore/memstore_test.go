package memstore_test

import (
	"testing"

	"github.com/autonomics/autonomics/shared/memstore"
	"github.com/autonomics/autonomics/shared/store"
	"github.com/autonomics/autonomics/shared/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.RunConformanceTests(t, func(t *testing.T) store.Store { return memstore.New() })
}

// TestConformanceShared runs the suite on one store shared by every test,
// as the Firestore emulator is.
func TestConformanceShared(t *testing.T) {
	s := memstore.New()
	storetest.RunConformanceTests(t, func(t *testing.T) store.Store { return s })
}

// BenchmarkDecision measures one decision's transaction on the in-memory
// store.
func BenchmarkDecision(b *testing.B) { storetest.BenchmarkDecisions(b, memstore.New(), "bench") }
