# The operator console (services/console, shared/console): server-rendered
# pages and the JSON API autonomicsctl uses, on one origin. Tenants and
# their governors, timelines and cascades, verification in the browser
# against the ledger's signed checkpoint, alerts and silences (through the
# monitor's API), dead letters with replay, the checkpoint history.
#
# Private: Cloud Run IAM lets in var.console_invokers (operators) and the
# Pub/Sub push identity, which pushes the dead-letter topic to
# /v1/deadletters/push; the console trusts Cloud Run's authentication and
# logs the caller of every change.
#
# What its identity holds: datastore.user on the monitor's database (dead
# letters and checkpoint history under console/<namespace>), datastore.viewer
# on the governors' and the ledger's databases (it reads instances, receipts
# and proofs, and writes neither); publisher on the eight domain topics
# (events an operator sends, dead-letter replays: they enter as events from
# outside and the governors check them as such), never an internal topic in
# production; invoker on the monitor (alerts, silences), with an ID token.
#
# Test clocks (POST /api/v1/tenants/{t}/clock:advance) run only where
# var.env is not "prod" (shared/platform TestClock): they move a tenant's
# armed timers in the governors' database and publish the timeouts to the
# internal topics, as Tick does. Only there, the console's identity also
# holds datastore.user on the governors' database and publisher on the
# internal topics (local.console_test_clock).

variable "console_invokers" {
  description = "IAM members allowed to use the operator console (pages and JSON API), e.g. [\"group:operators@example.com\"]. Never allUsers."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.console_invokers : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "The console is not public."
  }
}

variable "console_service" {
  description = "Sizing of the console's Cloud Run service."
  type = object({
    memory        = optional(string, "512Mi")
    cpu           = optional(string, "1")
    concurrency   = optional(number, 80)
    min_instances = optional(number, 0)
    max_instances = optional(number, 3)
  })
  default = {}
}

locals {
  console_service_name = "${var.prefix}autonomics-console"

  # Test clocks are on wherever the code turns them on (AUTONOMICS_ENV is
  # not prod), and so are the grants they need.
  console_test_clock = var.env != "prod"

  # Topics (keys of local.topics) the console publishes to: the domain
  # topics (operator events, replays); with test clocks, the internal
  # topics too (timeouts).
  console_publishes = concat(
    keys(local.domain_topics),
    local.console_test_clock ? keys(local.internal_topics) : [],
  )

  # Its role on each database (keys of local.firestore_databases), each
  # grant conditioned on that database: its own records in the monitor's;
  # the governors' and the ledger's read only (the test clock moves timers
  # in the governors').
  console_firestore = {
    main    = local.console_test_clock ? "roles/datastore.user" : "roles/datastore.viewer"
    ledger  = "roles/datastore.viewer"
    monitor = "roles/datastore.user"
  }

  # Dead letters and checkpoints live in the monitor's database under
  # console/<namespace>; the environment has that database to itself.
  console_namespace = "default"

  console_env = merge(
    local.platform_env,
    {
      # Proofs and checkpoints, read from the ledger the integrator writes.
      AUTONOMICS_LEDGER_DATABASE = local.ledger_database
      # Dead letters and checkpoint history, apart from governor state.
      AUTONOMICS_MONITOR_DATABASE = local.monitor_database
      # Cloud Run services listen on every interface.
      AUTONOMICS_LISTEN_HOST = "0.0.0.0"
      # Alerts and silences come from the monitor's API, called with an
      # ID token for this URL.
      AUTONOMICS_CONSOLE_MONITOR_URL = google_cloud_run_v2_service.service["monitor"].uri
      AUTONOMICS_CONSOLE_NAMESPACE   = local.console_namespace
      # Only the push identity may push dead letters; operators who may
      # use the console cannot inject one.
      AUTONOMICS_CONSOLE_PUSH_CALLERS = google_service_account.push.email
    },
    local.go_runtime_env["console"],
    lookup(var.extra_env, "console", {}),
  )

  console_member = "serviceAccount:${google_service_account.console.email}"
  console_invoker_grants = merge(
    { for m in var.console_invokers : m => m },
    { push = "serviceAccount:${google_service_account.push.email}" },
  )

  # The console's collection in the monitor's database
  # (shared/console/fsconsole): the TTL policy on expire_at, and the large
  # fields never queried exempt from indexing.
  console_unindexed_fields = {
    deadletters_data       = { collection = "deadletters", field = "data" }
    deadletters_attributes = { collection = "deadletters", field = "attributes" }
  }
}

resource "google_service_account" "console" {
  account_id   = "${var.prefix}svc-console"
  display_name = "Autonomics operator console"

  depends_on = [google_project_service.enabled]
}

resource "google_project_iam_member" "console_firestore" {
  for_each = local.console_firestore

  project = var.project
  role    = each.value
  member  = local.console_member

  condition {
    title       = "${var.prefix}autonomics-firestore-console-${each.key}"
    description = "Only the ${each.key} Firestore database of this environment."
    expression  = "resource.name == \"projects/${var.project}/databases/${local.firestore_databases[each.key]}\""
  }
}

# Traces and metrics over OTLP to the Telemetry API (write only).
resource "google_project_iam_member" "console_telemetry" {
  for_each = toset(var.telemetry == "gcp" ? ["roles/telemetry.tracesWriter", "roles/telemetry.metricsWriter"] : [])

  project = var.project
  role    = each.value
  member  = local.console_member
}

resource "google_pubsub_topic_iam_member" "console_publisher" {
  for_each = toset(local.console_publishes)

  topic  = google_pubsub_topic.topic[each.value].name
  role   = "roles/pubsub.publisher"
  member = local.console_member
}

resource "google_cloud_run_v2_service" "console" {
  name        = local.console_service_name
  location    = var.region
  description = "Autonomics operator console: tenants, governors, timelines, cascades, verification, alerts, dead letters."
  # Operators reach it from anywhere; IAM decides who.
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection
  labels              = { component = "console" }

  template {
    service_account                  = google_service_account.console.email
    max_instance_request_concurrency = var.console_service.concurrency
    # A live stream (GET /api/v1/stream) lasts up to 15 minutes
    # (shared/console StreamLifetime) before the client reconnects.
    timeout = "1200s"

    scaling {
      min_instance_count = var.console_service.min_instances
      max_instance_count = var.console_service.max_instances
    }

    containers {
      image = "${local.image_repository}/console:${var.image_tag}"

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.console_service.cpu
          memory = var.console_service.memory
        }
        # CPU only while serving: the checkpoint history is recorded on
        # every read of the checkpoint and by the refresh while an
        # instance serves; the ledger keeps the checkpoints themselves.
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.console_env
        content {
          name  = env.key
          value = env.value
        }
      }

      startup_probe {
        period_seconds    = 2
        failure_threshold = 15
        http_get {
          path = "/healthz"
        }
      }

      liveness_probe {
        period_seconds = 30
        http_get {
          path = "/healthz"
        }
      }
    }
  }

  depends_on = [
    google_project_iam_member.console_firestore,
    google_pubsub_topic_iam_member.console_publisher,
    google_cloud_run_v2_service_iam_member.invoker,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "console_invoker" {
  for_each = local.console_invoker_grants

  location = google_cloud_run_v2_service.console.location
  name     = google_cloud_run_v2_service.console.name
  role     = "roles/run.invoker"
  member   = each.value
}

# Every dead letter reaches the console, which keeps it (bounded by
# retention and count) for the operators to read and replay. The
# subscription has no dead-letter policy: it reads the dead-letter topic,
# and a dead letter it could not record is retried for the topic's seven
# days of retention. The inspection subscription (pubsub.tf) keeps its own
# copy for gcloud.
resource "google_pubsub_subscription" "console_dead_letter" {
  name                       = "${local.topics.dead_letter}-console-push"
  topic                      = google_pubsub_topic.topic["dead_letter"].id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.console.uri}/v1/deadletters/push"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloud_run_v2_service.console.uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_v2_service_iam_member.console_invoker]
}

# Dead letters expire: the TTL policy deletes one after its expire_at
# (the console's retention) even when no console runs to prune.
resource "google_firestore_field" "console_ttl" {
  database   = local.firestore_databases.monitor
  collection = "deadletters"
  field      = "expire_at"

  index_config {}
  ttl_config {}

  # Field changes of one database are applied one after another.
  depends_on = [google_firestore_field.actuator_unindexed]
}

resource "google_firestore_field" "console_unindexed" {
  for_each = local.console_unindexed_fields

  database   = local.firestore_databases.monitor
  collection = each.value.collection
  field      = each.value.field

  index_config {}

  depends_on = [google_firestore_field.console_ttl]
}

output "console" {
  description = "The operator console: its URL (autonomicsctl -url), dead-letter push subscription and service account."
  value = {
    url             = google_cloud_run_v2_service.console.uri
    subscription    = google_pubsub_subscription.console_dead_letter.name
    service_account = google_service_account.console.email
  }
}
