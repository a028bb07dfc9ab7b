package marketplace_test

import (
	"testing"

	"github.com/autonomics/autonomics/shared/marketplace"
	"github.com/autonomics/autonomics/shared/marketplace/accountstest"
)

func TestMemAccountsConformance(t *testing.T) {
	accountstest.Run(t, func() marketplace.Accounts { return marketplace.NewMemAccounts() })
}
