// Package account deploys the customer account governor: signup, verification, restriction, suspension and closure, as the Cloud Function "CustomerAccount".
//
// The function is triggered by a Pub/Sub push subscription on the
// customer_account topic; the Functions Framework turns the push into a
// messagePublished CloudEvent, and an Eventarc trigger delivers the same.
package account

import (
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/platform"
)

// EntryPoint is the function's name, the entry point Terraform deploys.
const EntryPoint = "CustomerAccount"

var runtime = platform.NewLazy(os.Getenv, EntryPoint, os.Stdout)

func init() {
	functions.CloudEvent(EntryPoint, runtime.GovernorFunction(governor.CustomerAccount))
}
