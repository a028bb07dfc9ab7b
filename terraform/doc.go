// Package terraform holds the offline checks of the deployment in this
// directory. The Google provider cannot be downloaded where the tests run,
// so `terraform validate` and `plan` are out of reach; instead the tests
// parse the configuration with github.com/hashicorp/hcl/v2, evaluate it the
// way Terraform would for given variables (computed attributes of the
// resources are stood in for by deterministic placeholders), and hold the
// result against the code:
//
//   - every function the code registers has a function resource with that
//     entry point, fed by a push subscription on its topic (governors) or
//     by a Cloud Scheduler job (Tick, Sweep), with OIDC authentication,
//     retry and dead-letter policies;
//   - every topic of shared/topic exists;
//   - every environment variable a deployed package reads is set on its
//     resource, and no AUTONOMICS_* variable is set that it does not read;
//   - no service account holds a primitive role, project-level roles stay
//     within a short list, and nothing is granted to allUsers;
//   - the Firestore indexes, field overrides and TTL policy that
//     shared/firestore documents exist;
//   - the staged source archive (functions/stage) compiles and registers
//     every function under the entry point Terraform names.
//
// The tests also run `terraform fmt -check -recursive` when terraform is on
// PATH. The package has no API: it is only its tests.
package terraform
