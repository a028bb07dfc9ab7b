// Package billing deploys the billing governor: billing periods from usage to invoice, dunning, refunds and credits, as the Cloud Function "Billing".
//
// The function is triggered by a Pub/Sub push subscription on the
// billing topic; the Functions Framework turns the push into a
// messagePublished CloudEvent, and an Eventarc trigger delivers the same.
package billing

import (
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/platform"
)

// EntryPoint is the function's name, the entry point Terraform deploys.
const EntryPoint = "Billing"

var runtime = platform.NewLazy(os.Getenv, EntryPoint, os.Stdout)

func init() {
	functions.CloudEvent(EntryPoint, runtime.GovernorFunction(governor.Billing))
}
