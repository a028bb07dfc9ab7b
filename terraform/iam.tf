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
  # IAM members of the runtime identities, by component.
  runtime_members = merge(
    { for d, sa in google_service_account.governor : "governor-${d}" => "serviceAccount:${sa.email}" },
    { scheduler = "serviceAccount:${google_service_account.scheduler.email}" },
    { for s, sa in google_service_account.service : s => "serviceAccount:${sa.email}" },
  )

  # Firestore access is limited to this environment's database. The query
  # API only reads.
  firestore_condition = "resource.name == \"projects/${var.project}/databases/${local.firestore_database}\""

  project_grants = merge(
    {
      for c, m in local.runtime_members : "${c}/datastore" => {
        role = c == "query" ? "roles/datastore.viewer" : "roles/datastore.user", member = m, firestore_only = true
      }
    },
    # Traces to Cloud Trace and metrics to Cloud Monitoring (write only).
    var.telemetry != "gcp" ? {} : merge(
      { for c, m in local.runtime_members : "${c}/trace" => { role = "roles/cloudtrace.agent", member = m, firestore_only = false } },
      { for c, m in local.runtime_members : "${c}/metrics" => { role = "roles/monitoring.metricWriter", member = m, firestore_only = false } },
    ),
    # Builds the functions from the staged archive into Artifact Registry.
    {
      "builder/build" = { role = "roles/run.builder", member = "serviceAccount:${google_service_account.builder.email}", firestore_only = false }
    },
  )

  # Topics each component publishes to. A governor publishes its receipts,
  # actions, cascades to any governor, and bad input to the dead-letter
  # topic; the scheduler publishes timeouts and re-publishes outbox entries
  # (receipts, cascades, actions); the monitor raises alerts, reports noisy
  # neighbours to the multi_tenant governor and dead-letters receipts it
  # cannot read; the integrator publishes signed checkpoints. The query API
  # publishes nothing.
  governor_publishes  = concat(keys(local.domain_topics), ["receipts", "actions", "dead_letter"])
  scheduler_publishes = concat(keys(local.domain_topics), ["receipts", "actions"])

  publisher_grants = merge(
    {
      for pair in setproduct(keys(local.governors), local.governor_publishes) : "governor-${pair[0]}/${pair[1]}" => {
        topic = pair[1], member = local.runtime_members["governor-${pair[0]}"]
      }
    },
    { for t in local.scheduler_publishes : "scheduler/${t}" => { topic = t, member = local.runtime_members.scheduler } },
    {
      "monitor/alerts"         = { topic = "alerts", member = local.runtime_members.monitor }
      "monitor/multi_tenant"   = { topic = "multi_tenant", member = local.runtime_members.monitor }
      "monitor/dead_letter"    = { topic = "dead_letter", member = local.runtime_members.monitor }
      "integrator/checkpoints" = { topic = "checkpoints", member = local.runtime_members.integrator }
    },
  )
}

resource "google_project_iam_member" "grant" {
  for_each = local.project_grants

  project = var.project
  role    = each.value.role
  member  = each.value.member

  dynamic "condition" {
    for_each = each.value.firestore_only ? [local.firestore_condition] : []
    content {
      title       = "${var.prefix}autonomics-firestore"
      description = "Only the Autonomics database of this environment."
      expression  = condition.value
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
