// Package tenancy deploys the multi-tenant governor: tenant provisioning, isolation, maintenance and deprovisioning, as the Cloud Function "MultiTenant".
//
// The function is triggered by a Pub/Sub push subscription on the
// multi_tenant topic; the Functions Framework turns the push into a
// messagePublished CloudEvent, and an Eventarc trigger delivers the same.
package tenancy

import (
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/platform"
)

// EntryPoint is the function's name, the entry point Terraform deploys.
const EntryPoint = "MultiTenant"

var runtime = platform.NewLazy(os.Getenv, EntryPoint, os.Stdout)

func init() {
	functions.CloudEvent(EntryPoint, runtime.GovernorFunction(governor.MultiTenant))
}
