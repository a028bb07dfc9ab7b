package memledger

import (
	"context"
	"testing"

	"github.com/autonomics/autonomics/shared/ledger/ledgertest"
)

func TestConformance(t *testing.T) {
	ledgertest.RunConformanceTests(t, func(t *testing.T) ledgertest.Harness {
		s := New()
		return ledgertest.Harness{
			Store: s,
			SetTile: func(_ context.Context, level int, n int64, data []byte) error {
				s.SetTile(level, n, data)
				return nil
			},
			SetLeaf: func(_ context.Context, hash string, leaf []byte) error {
				s.SetLeaf(hash, leaf)
				return nil
			},
		}
	})
}
