// Package tenancy deploys the multi-tenant governor: tenant provisioning, isolation, maintenance and deprovisioning, as the Cloud Function "MultiTenant".
//
// Two Pub/Sub push subscriptions deliver to the function: one on the
// multi_tenant domain topic (events from outside) and one on its internal
// topic (cascades, timeouts and the monitor's events). It is an HTTP
// function so that it reads the push body as Pub/Sub sends it, with the
// name of the subscription that delivered it; a messagePublished
// CloudEvent, as an Eventarc trigger sends one, is accepted too.
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
	functions.HTTP(EntryPoint, runtime.GovernorFunction(governor.MultiTenant))
}
