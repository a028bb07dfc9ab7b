// Package catalog deploys the product catalog governor: SKUs and plans from draft to retirement, as the Cloud Function "ProductCatalog".
//
// The function is triggered by a Pub/Sub push subscription on the
// product_catalog topic; the Functions Framework turns the push into a
// messagePublished CloudEvent, and an Eventarc trigger delivers the same.
package catalog

import (
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/platform"
)

// EntryPoint is the function's name, the entry point Terraform deploys.
const EntryPoint = "ProductCatalog"

var runtime = platform.NewLazy(os.Getenv, EntryPoint, os.Stdout)

func init() {
	functions.CloudEvent(EntryPoint, runtime.GovernorFunction(governor.ProductCatalog))
}
