// Package compliance deploys the compliance and audit governor: audits, findings, remediation and escalation, as the Cloud Function "ComplianceAudit".
//
// The function is triggered by a Pub/Sub push subscription on the
// compliance_audit topic; the Functions Framework turns the push into a
// messagePublished CloudEvent, and an Eventarc trigger delivers the same.
package compliance

import (
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/platform"
)

// EntryPoint is the function's name, the entry point Terraform deploys.
const EntryPoint = "ComplianceAudit"

var runtime = platform.NewLazy(os.Getenv, EntryPoint, os.Stdout)

func init() {
	functions.CloudEvent(EntryPoint, runtime.GovernorFunction(governor.ComplianceAudit))
}
