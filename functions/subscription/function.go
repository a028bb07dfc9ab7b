// Package subscription deploys the subscription governor: trials, renewals, payment failures and cancellation, as the Cloud Function "Subscription".
//
// The function is triggered by a Pub/Sub push subscription on the
// subscription topic; the Functions Framework turns the push into a
// messagePublished CloudEvent, and an Eventarc trigger delivers the same.
package subscription

import (
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/platform"
)

// EntryPoint is the function's name, the entry point Terraform deploys.
const EntryPoint = "Subscription"

var runtime = platform.NewLazy(os.Getenv, EntryPoint, os.Stdout)

func init() {
	functions.CloudEvent(EntryPoint, runtime.GovernorFunction(governor.Subscription))
}
