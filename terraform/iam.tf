# One service account per component, each granted only what it uses.
# Runtime identities: a governor function per domain, the scheduler
# functions, and each Cloud Run service. Calling identities: the Pub/Sub
# push identity and the Cloud Scheduler identity, which may only invoke.
# The build identity only builds the functions.

resource "google_service_account" "governor" {
  for_each = local.governors

  account_id   = "${var.prefix}gov-${replace(each.key, "_", "-")}"
  display_name = "Autonomics ${each.key} governor function"

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "scheduler" {
  account_id   = "${var.prefix}fn-scheduler"
  display_name = "Autonomics Tick and Sweep functions"

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "service" {
  for_each = local.services

  account_id   = "${var.prefix}svc-${each.key}"
  display_name = "Autonomics ${each.key} service"

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "push" {
  account_id   = "${var.prefix}pubsub-push"
  display_name = "Autonomics Pub/Sub push deliveries (invoker only)"

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "scheduler_invoker" {
  account_id   = "${var.prefix}scheduler-invoker"
  display_name = "Autonomics Cloud Scheduler jobs (invoker only)"

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "builder" {
  account_id   = "${var.prefix}fn-builder"
  display_name = "Autonomics function builds"

  depends_on = [google_project_service.enabled]
}

locals {
  # IAM members of the runtime identities, by account key, and the
  # component each account serves (the eight governors are one component).
  runtime_members = merge(
    { for d, sa in google_service_account.governor : "governor-${d}" => "serviceAccount:${sa.email}" },
    { scheduler = "serviceAccount:${google_service_account.scheduler.email}" },
    { for s, sa in google_service_account.service : s => "serviceAccount:${sa.email}" },
  )
  runtime_components = merge(
    { for d in keys(local.governors) : "governor-${d}" => "governor" },
    { scheduler = "scheduler" },
    { for s in keys(local.services) : s => s },
  )

  # Firestore: each component's role on each database (firestore.tf), each
  # grant conditioned on that one database. Only the governors and the
  # scheduler write governor state and receipts; only the integrator writes
  # the ledger, only the monitor its own state; the query API only reads.
  # The integrator reads the governors' database (receipts), the monitor
  # reads it for its health checks (outbox backlog, overdue timers); the
  # governors and the scheduler read the ledger, whose receipts witness
  # the delivery of their decisions (redeliveries, the sweep).
  firestore_access = {
    governor   = { main = "roles/datastore.user", ledger = "roles/datastore.viewer" }
    scheduler  = { main = "roles/datastore.user", ledger = "roles/datastore.viewer" }
    integrator = { main = "roles/datastore.viewer", ledger = "roles/datastore.user" }
    monitor    = { main = "roles/datastore.viewer", monitor = "roles/datastore.user" }
    query      = { main = "roles/datastore.viewer", ledger = "roles/datastore.viewer" }
  }

  project_grants = merge(
    merge([
      for c, m in local.runtime_members : {
        for db, role in local.firestore_access[local.runtime_components[c]] : "${c}/datastore/${db}" => {
          role = role, member = m, database = db
        }
      }
    ]...),
    # Traces and metrics over OTLP to the Telemetry API (write only):
    # spans land in Cloud Trace, metrics in Cloud Monitoring.
    var.telemetry != "gcp" ? {} : merge(
      { for c, m in local.runtime_members : "${c}/traces" => { role = "roles/telemetry.tracesWriter", member = m, database = "" } },
      { for c, m in local.runtime_members : "${c}/metrics" => { role = "roles/telemetry.metricsWriter", member = m, database = "" } },
    ),
    # The monitor's metrics engine, whatever var.telemetry says: its
    # policies are PromQL queries to Managed Service for Prometheus (read
    # only), and its intake (POST /v1/metrics, the receipt-derived metrics)
    # forwards samples through the Telemetry API (services/monitor
    # intake.go). The metrics key is the telemetry grant's, so the two
    # never manage the same binding twice.
    {
      "monitor/prometheus" = { role = "roles/monitoring.viewer", member = local.runtime_members.monitor, database = "" }
      "monitor/metrics"    = { role = "roles/telemetry.metricsWriter", member = local.runtime_members.monitor, database = "" }
    },
    # Builds the functions from the staged archive into Artifact Registry.
    {
      "builder/build" = { role = "roles/run.builder", member = "serviceAccount:${google_service_account.builder.email}", database = "" }
    },
  )

  # Topics each account publishes to (keys of local.topics). A governor
  # publishes its receipts, bad input to the dead-letter topic, cascades to
  # the internal topics of the domains its machine may cascade to, and
  # actions if its machine actuates (local.governors). The scheduler
  # publishes timeouts (Tick) to the internal topics, and re-publishes
  # outbox entries (Sweep), which are a decision's receipt, its cascades
  # (internal topics) and its actions: so internal topics, receipts and
  # actions, never a domain topic or the dead-letter topic. The monitor
  # raises alerts, sends fairness events to the multi_tenant governor's
  # internal topic and copies receipts it cannot read to the dead-letter
  # topic. The integrator publishes signed checkpoints. The query API
  # publishes nothing.
  governor_publishes = {
    for d, g in local.governors : d => concat(
      [for t in g.cascades : "${t}_internal"],
      g.actuates ? ["actions"] : [],
      ["receipts", "dead_letter"],
    )
  }
  scheduler_publishes = concat(keys(local.internal_topics), ["receipts", "actions"])

  publisher_grants = merge(
    merge([
      for d, topics in local.governor_publishes : {
        for t in topics : "governor-${d}/${t}" => { topic = t, member = local.runtime_members["governor-${d}"] }
      }
    ]...),
    { for t in local.scheduler_publishes : "scheduler/${t}" => { topic = t, member = local.runtime_members.scheduler } },
    {
      "monitor/alerts"                = { topic = "alerts", member = local.runtime_members.monitor }
      "monitor/multi_tenant_internal" = { topic = "multi_tenant_internal", member = local.runtime_members.monitor }
      "monitor/dead_letter"           = { topic = "dead_letter", member = local.runtime_members.monitor }
      "integrator/checkpoints"        = { topic = "checkpoints", member = local.runtime_members.integrator }
    },
  )
}

resource "google_project_iam_member" "grant" {
  for_each = local.project_grants

  project = var.project
  role    = each.value.role
  member  = each.value.member

  dynamic "condition" {
    for_each = each.value.database == "" ? [] : [local.firestore_databases[each.value.database]]
    content {
      title       = "${var.prefix}autonomics-firestore-${each.value.database}"
      description = "Only the ${each.value.database} Firestore database of this environment."
      expression  = "resource.name == \"projects/${var.project}/databases/${condition.value}\""
    }
  }
}

resource "google_pubsub_topic_iam_member" "publisher" {
  for_each = local.publisher_grants

  topic  = google_pubsub_topic.topic[each.value.topic].name
  role   = "roles/pubsub.publisher"
  member = each.value.member
}

# The monitor's health check reads the alerts topic's metadata.
resource "google_pubsub_topic_iam_member" "monitor_alerts_viewer" {
  topic  = google_pubsub_topic.topic["alerts"].name
  role   = "roles/pubsub.viewer"
  member = local.runtime_members.monitor
}
