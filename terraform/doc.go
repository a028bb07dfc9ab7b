// Package terraform holds the checks of the deployment in this directory
// that Terraform cannot make: the configuration held against the code.
// Terraform checks itself — `terraform validate` and a plan of each
// environment with dummy credentials, in .ci/tf-check.sh (`make test`,
// wherever the google and google-beta providers are installed locally) and
// in Cloud Build before every apply. These tests parse the configuration
// with github.com/hashicorp/hcl/v2, evaluate it the way Terraform would
// for given variables (computed attributes of the resources are stood in
// for by deterministic placeholders), and check that
//
//   - every function the code registers has a function resource with that
//     entry point, fed by two push subscriptions named topic.Push of its
//     domain topic and of its internal topic (governors) or by a Cloud
//     Scheduler job (Tick, Sweep), with OIDC authentication, retry and
//     dead-letter policies;
//   - every topic of shared/topic exists;
//   - every account publishes exactly where its component sends: a
//     governor to the internal topics of the domains its machine may
//     cascade to, to actions if it actuates (both as shared/machines
//     declares them), to receipts and dead-letter; the scheduler, the
//     monitor and the integrator as listed in the tests; external
//     producers to the domain topics only;
//   - every Firestore role is conditioned on one database, each component
//     writes only its own database, and the query API writes none;
//   - every environment variable a deployed package reads is set on its
//     resource, and no AUTONOMICS_* variable is set that it does not read;
//   - no service account holds a primitive role, project-level roles stay
//     within a short list, and nothing is granted to allUsers;
//   - the Firestore indexes, field overrides and TTL policy that
//     shared/firestore documents exist, each in the database whose layout
//     it documents;
//   - the Marketplace side (marketplace.tf) exists only when enabled: a
//     private service invoked by the push and scheduler identities alone,
//     a sign-up page that authenticates its callers itself, push
//     subscriptions on the Marketplace topic and on exactly the
//     marketplace.* actions the machines emit, its scheduled jobs;
//   - the staged source archive (functions/stage) compiles and registers
//     every function under the entry point Terraform names.
//
// The tests also run `terraform fmt -check -recursive` when terraform is on
// PATH. The package has no API: it is only its tests.
package terraform
