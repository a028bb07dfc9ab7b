// Package machines holds the eight governor state machines of Autonomics
// as data: customer_account, entitlement, subscription, billing,
// product_catalog, quota_sla, compliance_audit and multi_tenant. Each is a
// governor.Machine whose rows, guards, timers and effects follow the
// design's tables; the generated pages under docs/ are rendered from these
// tables and pinned by a golden test.
package machines
