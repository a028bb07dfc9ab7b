// Package machines is the registry of the eight governors of Autonomics:
// New and Machine return the machines of customer_account (package
// account), entitlement, subscription, billing, product_catalog
// (catalog), quota_sla (quota), compliance_audit (compliance) and
// multi_tenant (tenancy), each defined in its own package under this one,
// and the events they send one another are the typed values of package
// messages.
//
// A governor is a governor.Machine: its rows declare their source states,
// event, guard, target states, timers, cascades, actions, the other
// instances they read (Needs) and the reason codes their guards reject
// with, so the table is the whole contract of the machine. The engine runs
// governor.CheckGraph over New's machines before serving: every cascade
// must name an event its receiving machine accepts from a governor, with
// data that machine's payload check accepts.
//
// The pages under docs/ (one per governor, and an index) are generated
// from the tables, numbers included, and pinned by TestGolden: run
// `make docs` after changing a machine.
package machines
