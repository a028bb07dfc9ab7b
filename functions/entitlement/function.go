// Package entitlement deploys the entitlement governor: the Marketplace entitlement lifecycle, as the Cloud Function "Entitlement".
//
// The function is triggered by a Pub/Sub push subscription on the
// entitlement topic; the Functions Framework turns the push into a
// messagePublished CloudEvent, and an Eventarc trigger delivers the same.
package entitlement

import (
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/platform"
)

// EntryPoint is the function's name, the entry point Terraform deploys.
const EntryPoint = "Entitlement"

var runtime = platform.NewLazy(os.Getenv, EntryPoint, os.Stdout)

func init() {
	functions.CloudEvent(EntryPoint, runtime.GovernorFunction(governor.Entitlement))
}
