package usage_test

import (
	"testing"

	"github.com/autonomics/autonomics/shared/marketplace/usage"
	"github.com/autonomics/autonomics/shared/marketplace/usage/usagetest"
)

func TestMemStoreConformance(t *testing.T) {
	usagetest.Run(t, func(t *testing.T) usage.WindowStore { return usage.NewMemStore() })
}
