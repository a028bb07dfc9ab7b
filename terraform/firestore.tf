# The Firestore databases and what the queries of shared/firestore need
# (its package documentation, the Ledger type's and the AlertStore's list
# the layout, queries and indexes). Three databases, so that IAM grants
# each component exactly the data it owns (iam.tf):
#
#   main     governor instances, receipts, dedup markers, outbox, timers
#            (AUTONOMICS_FIRESTORE_DATABASE): written by the governors and
#            the scheduler only;
#   ledger   the verifiable ledger (AUTONOMICS_LEDGER_DATABASE): written by
#            the integrator only;
#   monitor  the monitor's policies, silences, alerts and leases
#            (AUTONOMICS_MONITOR_DATABASE): written by the monitor only.

resource "google_firestore_database" "main" {
  name        = local.firestore_database
  location_id = local.firestore_location
  type        = "FIRESTORE_NATIVE"
  # Transactions lock what they read; the engine is written for it.
  concurrency_mode            = "PESSIMISTIC"
  app_engine_integration_mode = "DISABLED"
  point_in_time_recovery_enablement = (
    var.firestore_point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  )
  delete_protection_state = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # The project's (default) database outlives the configuration; an
  # environment's own database goes with it.
  deletion_policy = local.firestore_database == "(default)" ? "ABANDON" : "DELETE"

  depends_on = [google_project_service.enabled]
}

locals {
  # The databases of the ledger and of the monitor, by key.
  service_databases = {
    ledger  = local.ledger_database
    monitor = local.monitor_database
  }
}

resource "google_firestore_database" "service" {
  for_each = local.service_databases

  name                        = each.value
  location_id                 = local.firestore_location
  type                        = "FIRESTORE_NATIVE"
  concurrency_mode            = "PESSIMISTIC"
  app_engine_integration_mode = "DISABLED"
  point_in_time_recovery_enablement = (
    var.firestore_point_in_time_recovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED"
  )
  delete_protection_state = var.deletion_protection ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED"
  # Never a (default) database: it goes with the configuration (unless
  # deletion protection holds it).
  deletion_policy = "DELETE"

  depends_on = [google_project_service.enabled]
}

locals {
  # Database ids by key, as the index and field resources name them.
  firestore_databases = merge(
    { main = google_firestore_database.main.name },
    { for k, db in google_firestore_database.service : k => db.name },
  )

  # Composite indexes of the main database (__name__ follows implicitly,
  # in the direction of the last field): receipts by tenant (collection
  # group), optionally narrowed by domain and subject, ordered by decision
  # time, oldest first and newest first (the timeline); receipts of one
  # cascade (tenant and correlation id) by decision time; undelivered
  # decisions (dedup markers holding their outbox) by age and due timers,
  # both per shard so that no index range takes every decision's write.
  # Equality fields are ascending; `order` is the direction of the last
  # field. The ledger's and the monitor's queries need none.
  firestore_indexes = {
    receipts_by_tenant                       = { collection = "receipts", scope = "COLLECTION_GROUP", fields = ["tenant_id", "decided_at_ts"], order = "ASCENDING" }
    receipts_by_tenant_domain                = { collection = "receipts", scope = "COLLECTION_GROUP", fields = ["tenant_id", "domain", "decided_at_ts"], order = "ASCENDING" }
    receipts_by_tenant_subject               = { collection = "receipts", scope = "COLLECTION_GROUP", fields = ["tenant_id", "subject", "decided_at_ts"], order = "ASCENDING" }
    receipts_by_tenant_domain_subject        = { collection = "receipts", scope = "COLLECTION_GROUP", fields = ["tenant_id", "domain", "subject", "decided_at_ts"], order = "ASCENDING" }
    receipts_by_tenant_newest                = { collection = "receipts", scope = "COLLECTION_GROUP", fields = ["tenant_id", "decided_at_ts"], order = "DESCENDING" }
    receipts_by_tenant_domain_newest         = { collection = "receipts", scope = "COLLECTION_GROUP", fields = ["tenant_id", "domain", "decided_at_ts"], order = "DESCENDING" }
    receipts_by_tenant_subject_newest        = { collection = "receipts", scope = "COLLECTION_GROUP", fields = ["tenant_id", "subject", "decided_at_ts"], order = "DESCENDING" }
    receipts_by_tenant_domain_subject_newest = { collection = "receipts", scope = "COLLECTION_GROUP", fields = ["tenant_id", "domain", "subject", "decided_at_ts"], order = "DESCENDING" }
    receipts_by_correlation                  = { collection = "receipts", scope = "COLLECTION_GROUP", fields = ["tenant_id", "correlation_id", "decided_at_ts"], order = "ASCENDING" }
    dedup_undelivered                        = { collection = "dedup", scope = "COLLECTION_GROUP", fields = ["shard", "delivered", "created_at"], order = "ASCENDING" }
    timers_due                               = { collection = "timers", scope = "COLLECTION", fields = ["shard", "due"], order = "ASCENDING" }
  }

  # Fields never queried alone and possibly large, or timestamps written
  # per decision that only composite indexes with a shard read: no
  # single-field indexes, in the database that holds them.
  firestore_unindexed_fields = {
    instances_data      = { database = "main", collection = "instances", field = "data" }
    dedup_outbox        = { database = "main", collection = "dedup", field = "outbox" }
    dedup_created_at    = { database = "main", collection = "dedup", field = "created_at" }
    receipts_actions    = { database = "main", collection = "receipts", field = "actions" }
    receipts_reason     = { database = "main", collection = "receipts", field = "reason" }
    receipts_prev_hash  = { database = "main", collection = "receipts", field = "prev_hash" }
    receipts_hash       = { database = "main", collection = "receipts", field = "hash" }
    receipts_digest     = { database = "main", collection = "receipts", field = "data_digest" }
    timers_due          = { database = "main", collection = "timers", field = "due" }
    ledger_pending_leaf = { database = "ledger", collection = "pending", field = "leaf" }
    ledger_entry_leaf   = { database = "ledger", collection = "entries", field = "leaf" }
    ledger_tile_data    = { database = "ledger", collection = "tiles", field = "data" }
    ledger_tile_hashes  = { database = "ledger", collection = "tiles", field = "hashes" }
    # Monotonic per-receipt fields, never queried: indexing them would make
    # a write hotspot of the ledger's per-receipt collections.
    ledger_pending_time = { database = "ledger", collection = "pending", field = "arrived_at" }
    ledger_entry_index  = { database = "ledger", collection = "entries", field = "index" }
    ledger_entry_time   = { database = "ledger", collection = "entries", field = "arrived_at" }
    alert_labels        = { database = "monitor", collection = "alerts", field = "labels" }
    alert_outbox        = { database = "monitor", collection = "alerts", field = "outbox" }
    alert_sent          = { database = "monitor", collection = "alerts", field = "sent" }
  }
}

resource "google_firestore_index" "composite" {
  for_each = local.firestore_indexes

  database    = google_firestore_database.main.name
  collection  = each.value.collection
  query_scope = each.value.scope

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path = fields.value
      order      = fields.key == length(each.value.fields) - 1 ? each.value.order : "ASCENDING"
    }
  }
}

# ReceiptsByExecution is a collection-group query on execution_id ==, which
# needs the field's ascending index in collection-group scope. Setting an
# index_config replaces the automatic indexes of the field; the receipts of
# one instance are never queried by execution id, so none are kept.
resource "google_firestore_field" "receipts_execution_id" {
  database   = google_firestore_database.main.name
  collection = "receipts"
  field      = "execution_id"

  index_config {
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION_GROUP"
    }
  }
}

# Store.Outbox finds a decision's marker by its receipt hash, a
# collection-group query on receipt_hash ==; only that index is kept.
resource "google_firestore_field" "dedup_receipt_hash" {
  database   = google_firestore_database.main.name
  collection = "dedup"
  field      = "receipt_hash"

  index_config {
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION_GROUP"
    }
  }

  depends_on = [google_firestore_field.receipts_execution_id]
}

# Dedup markers expire: the TTL policy deletes a marker after its
# expire_at (within about a day). expire_at is not queried, and indexing a
# monotonically increasing timestamp would only add write hotspots.
resource "google_firestore_field" "dedup_expire_at" {
  database   = google_firestore_database.main.name
  collection = "dedup"
  field      = "expire_at"

  index_config {}
  ttl_config {}

  # Concurrent field changes on a new database contend (409 "underlying
  # data changed"); they are applied one after another.
  depends_on = [google_firestore_field.dedup_receipt_hash]
}

resource "google_firestore_field" "unindexed" {
  for_each = local.firestore_unindexed_fields

  database   = local.firestore_databases[each.value.database]
  collection = each.value.collection
  field      = each.value.field

  index_config {}

  depends_on = [google_firestore_field.dedup_expire_at]
}
