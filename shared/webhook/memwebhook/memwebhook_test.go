package memwebhook_test

import (
	"testing"

	"github.com/autonomics/autonomics/shared/webhook"
	"github.com/autonomics/autonomics/shared/webhook/memwebhook"
	"github.com/autonomics/autonomics/shared/webhook/webhooktest"
)

func TestConformance(t *testing.T) {
	webhooktest.Run(t, func(t *testing.T) webhook.Store { return memwebhook.New() })
}
