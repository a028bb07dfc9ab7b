# The webhook actuator (services/actuator): delivers every action the
# governors publish on the actions topic to the provider's endpoints as
# Standard Webhooks, retries for up to three days, dead-letters what fails
# for good and reports it to the emitting governor (actuation_failed on its
# internal topic).
#
# Its identity holds exactly: publisher on the dead-letter topic and on the
# internal topics of the domains whose machines actuate (local.governors
# .actuates, held to shared/machines by the tests); datastore.user on the
# monitor's database only, where its state lives (the governors' database
# stays unwritable, and unreadable, to it); secret accessor on the secrets
# of its endpoints. Pub/Sub pushes the actions to it and Cloud Scheduler
# calls its sweep every minute.

variable "actuator_endpoints" {
  description = <<-EOT
    The actuator's initial endpoints, by id (1-63 of [a-z0-9_-]): created when the service starts
    if they do not exist yet, and left alone afterwards (the API, PUT /v1/endpoints/{id}, and a
    410 Gone from the receiver change them). url is https; kinds are action kinds (e.g.
    "tenant.provision") or ["*"]; secrets are ids of Secret Manager secrets of this project whose
    latest version holds "whsec_<base64>" (two while rotating). Without secrets Terraform creates
    the secret <prefix>actuator-<id> (no version: add it with
    `gcloud secrets versions add`); the actuator may read exactly these secrets.
  EOT
  type = map(object({
    url      = string
    kinds    = list(string)
    secrets  = optional(list(string), [])
    disabled = optional(bool, false)
  }))
  default = {}

  validation {
    condition     = alltrue([for id, e in var.actuator_endpoints : can(regex("^[a-z0-9][a-z0-9_-]{0,62}$", id))])
    error_message = "Endpoint ids are 1-63 of [a-z0-9_-], starting with a letter or digit."
  }

  validation {
    condition     = alltrue([for e in values(var.actuator_endpoints) : can(regex("^https://", e.url))])
    error_message = "Endpoints are https URLs."
  }

  validation {
    condition     = alltrue([for e in values(var.actuator_endpoints) : length(e.kinds) > 0 && length(e.secrets) <= 2])
    error_message = "Every endpoint receives at least one kind and has at most two secrets."
  }
}

variable "actuator_invokers" {
  description = "IAM members allowed to call the actuator's API (endpoints, attempts, redelivery, replay), e.g. [\"group:operators@example.com\"]. Never allUsers."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.actuator_invokers : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "The actuator API is not public."
  }
}

variable "actuator_allow_private" {
  description = "Let the actuator deliver to private addresses (RFC 1918, fc00::/7, 100.64.0.0/10): receivers inside this deployment's network. Link-local addresses, the metadata server's among them, are refused regardless."
  type        = bool
  default     = false
}

variable "actuator_service" {
  description = "Sizing of the actuator's Cloud Run service. Its CPU stays allocated between requests, so that attempts still in flight when a push is answered go on."
  type = object({
    memory        = optional(string, "512Mi")
    cpu           = optional(string, "1")
    concurrency   = optional(number, 80)
    min_instances = optional(number, 0)
    max_instances = optional(number, 3)
  })
  default = {}
}

variable "actuator_sweep_schedule" {
  description = "Cron schedule (UTC) of the actuator's sweep: due retries and unreported failures."
  type        = string
  default     = "* * * * *"
}

locals {
  actuator_service_name = "${var.prefix}autonomics-actuator"

  # The governors whose machines actuate: the actuator reports failed
  # actions to their internal topics, and to no other.
  actuator_domains = sort([for d, g in local.governors : d if g.actuates])
  actuator_publishes = concat(
    ["dead_letter"],
    [for d in local.actuator_domains : "${d}_internal"],
  )

  # Secret Manager secret ids of each endpoint: those given, or the one
  # created here.
  actuator_created_secrets = { for id, e in var.actuator_endpoints : id => "${var.prefix}actuator-${id}" if length(e.secrets) == 0 }
  actuator_secret_ids      = { for id, e in var.actuator_endpoints : id => length(e.secrets) > 0 ? e.secrets : ["${var.prefix}actuator-${id}"] }
  actuator_secret_grants = merge([
    for id, ss in local.actuator_secret_ids : { for s in ss : "${id}/${s}" => s }
  ]...)

  # AUTONOMICS_ACTUATOR_ENDPOINTS: the initial endpoints, each secret a
  # Secret Manager version name (never a value: state holds none).
  actuator_endpoints_env = jsonencode({
    for id, e in var.actuator_endpoints : id => {
      url      = e.url
      kinds    = e.kinds
      disabled = e.disabled
      secrets  = [for s in local.actuator_secret_ids[id] : "projects/${var.project}/secrets/${s}/versions/latest"]
    }
  })

  # The metrics the actuator records, as Cloud Monitoring stores them
  # (shared/telemetry MetricType); the tests hold them to the instruments.
  actuator_metric_types = {
    failures = "prometheus.googleapis.com/autonomics.actuator.failures/counter"
  }

  # Every variable services/actuator reads, set explicitly: the actuator
  # has no entry in local.env_left_to_code.
  actuator_env = merge(
    local.platform_env,
    {
      # platform.FromEnv reads it for every component; the actuator opens
      # nothing in the ledger's database.
      AUTONOMICS_LEDGER_DATABASE = local.ledger_database
      # Its state: deliveries, attempts, endpoints, apart from governor
      # state.
      AUTONOMICS_MONITOR_DATABASE = local.monitor_database
      # Cloud Run services listen on every interface.
      AUTONOMICS_LISTEN_HOST        = "0.0.0.0"
      AUTONOMICS_ACTUATOR_NAMESPACE = "webhooks"
      AUTONOMICS_ACTUATOR_ENDPOINTS = local.actuator_endpoints_env
      # Receivers are on the internet; loopback is the local stack's.
      AUTONOMICS_ACTUATOR_ALLOW_LOOPBACK = "false"
      AUTONOMICS_ACTUATOR_ALLOW_PRIVATE  = tostring(var.actuator_allow_private)
      # Secrets only from Secret Manager, never stored with the endpoints.
      AUTONOMICS_ACTUATOR_INLINE_SECRETS = "false"
      # Only the push identity may push actions; operators who may call
      # the API cannot inject one.
      AUTONOMICS_ACTUATOR_PUSH_CALLERS = google_service_account.push.email
      AUTONOMICS_ACTUATOR_INLINE_WAIT  = "2s"
      # Cloud Scheduler drives the sweep (POST /v1/sweep).
      AUTONOMICS_ACTUATOR_SWEEP_INTERVAL = "0"
      AUTONOMICS_ACTUATOR_RETRY_INITIAL  = "5s"
      AUTONOMICS_ACTUATOR_RETRY_MAX_AGE  = "72h"
      AUTONOMICS_ACTUATOR_RETENTION      = "720h"
    },
    local.go_runtime_env["actuator"],
    lookup(var.extra_env, "actuator", {}),
  )

  actuator_member = "serviceAccount:${google_service_account.actuator.email}"
  actuator_invoker_grants = merge(
    { for m in var.actuator_invokers : m => m },
    {
      push      = "serviceAccount:${google_service_account.push.email}"
      scheduler = "serviceAccount:${google_service_account.scheduler_invoker.email}"
    },
  )
}

resource "google_service_account" "actuator" {
  account_id   = "${var.prefix}svc-actuator"
  display_name = "Autonomics actuator service (webhooks)"

  depends_on = [google_project_service.enabled]
}

# Its own state, in the monitor's database and nowhere else.
resource "google_project_iam_member" "actuator_firestore" {
  project = var.project
  role    = "roles/datastore.user"
  member  = local.actuator_member

  condition {
    title       = "${var.prefix}autonomics-firestore-actuator"
    description = "Only the monitor Firestore database of this environment, where the actuator keeps its state."
    expression  = "resource.name == \"projects/${var.project}/databases/${local.firestore_databases.monitor}\""
  }
}

# Traces and metrics over OTLP to the Telemetry API (write only).
resource "google_project_iam_member" "actuator_telemetry" {
  for_each = toset(var.telemetry == "gcp" ? ["roles/telemetry.tracesWriter", "roles/telemetry.metricsWriter"] : [])

  project = var.project
  role    = each.value
  member  = local.actuator_member
}

resource "google_pubsub_topic_iam_member" "actuator_publisher" {
  for_each = toset(local.actuator_publishes)

  topic  = google_pubsub_topic.topic[each.value].name
  role   = "roles/pubsub.publisher"
  member = local.actuator_member
}

# The secrets of the initial endpoints that name none; their versions are
# added outside Terraform, so that state never holds a secret.
resource "google_secret_manager_secret" "actuator" {
  for_each = local.actuator_created_secrets

  secret_id = each.value
  labels    = { component = "actuator", endpoint = each.key }

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_iam_member" "actuator_accessor" {
  for_each = local.actuator_secret_grants

  secret_id = "projects/${var.project}/secrets/${each.value}"
  role      = "roles/secretmanager.secretAccessor"
  member    = local.actuator_member

  depends_on = [google_secret_manager_secret.actuator]
}

resource "google_cloud_run_v2_service" "actuator" {
  name                = local.actuator_service_name
  location            = var.region
  description         = "Autonomics webhook actuator: delivers the governors' actions to the provider's endpoints."
  ingress             = "INGRESS_TRAFFIC_ALL"
  deletion_protection = var.deletion_protection
  labels              = { component = "actuator" }

  template {
    service_account                  = google_service_account.actuator.email
    max_instance_request_concurrency = var.actuator_service.concurrency
    timeout                          = "120s"

    scaling {
      min_instance_count = var.actuator_service.min_instances
      max_instance_count = var.actuator_service.max_instances
    }

    containers {
      image = "${local.image_repository}/actuator:${var.image_tag}"

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.actuator_service.cpu
          memory = var.actuator_service.memory
        }
        # A push is answered once its action is recorded; the attempts it
        # started go on after the answer, so the CPU stays allocated. An
        # idle instance still scales to zero.
        cpu_idle          = false
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.actuator_env
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
    google_project_iam_member.actuator_firestore,
    google_pubsub_topic_iam_member.actuator_publisher,
    google_secret_manager_secret_iam_member.actuator_accessor,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "actuator_invoker" {
  for_each = local.actuator_invoker_grants

  location = google_cloud_run_v2_service.actuator.location
  name     = google_cloud_run_v2_service.actuator.name
  role     = "roles/run.invoker"
  member   = each.value
}

# Every action reaches the actuator, a tenant's in publish order (the
# ordering key is the tenant): the actuator keeps that order per endpoint.
# A push is acknowledged once the action is recorded; retries are the
# actuator's own (three days, longer than Pub/Sub would hold a message),
# so Pub/Sub redelivers only what could not be recorded.
resource "google_pubsub_subscription" "actuator" {
  name                       = "${local.topics.actions}-actuator-push"
  topic                      = google_pubsub_topic.topic["actions"].id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  enable_message_ordering    = true

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.actuator.uri}/v1/actions/push"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloud_run_v2_service.actuator.uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.topic["dead_letter"].id
    max_delivery_attempts = 10
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_v2_service_iam_member.actuator_invoker]
}

resource "google_pubsub_subscription_iam_member" "actuator_dead_letter_ack" {
  subscription = google_pubsub_subscription.actuator.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

resource "google_cloud_scheduler_job" "actuator_sweep" {
  name             = "${var.prefix}autonomics-actuator-sweep"
  description      = "Attempts the webhook retries that are due and reports the deliveries that failed for good."
  region           = var.region
  schedule         = var.actuator_sweep_schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "120s"

  # The next minute's sweep does the same work.
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.actuator.uri}/v1/sweep"

    oidc_token {
      service_account_email = google_service_account.scheduler_invoker.email
      audience              = google_cloud_run_v2_service.actuator.uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.actuator_invoker]
}

# The actuator's collections in the monitor's database
# (shared/webhook/fswebhook): TTL policies on expire_at, and the large
# fields never queried exempt from indexing.
locals {
  actuator_ttl_fields = {
    actions    = "expire_at"
    deliveries = "expire_at"
    attempts   = "expire_at"
  }
  actuator_unindexed_fields = {
    actions_data       = { collection = "actions", field = "data" }
    actions_raw        = { collection = "actions", field = "raw" }
    actions_attributes = { collection = "actions", field = "attributes" }
    attempts_response  = { collection = "attempts", field = "response" }
  }
}

resource "google_firestore_field" "actuator_ttl" {
  for_each = local.actuator_ttl_fields

  database   = local.firestore_databases.monitor
  collection = each.key
  field      = each.value

  index_config {}
  ttl_config {}

  depends_on = [google_firestore_field.unindexed]
}

resource "google_firestore_field" "actuator_unindexed" {
  for_each = local.actuator_unindexed_fields

  database   = local.firestore_databases.monitor
  collection = each.value.collection
  field      = each.value.field

  index_config {}

  depends_on = [google_firestore_field.actuator_ttl]
}

resource "google_monitoring_alert_policy" "actuator_failures" {
  display_name          = "Autonomics ${var.prefix}webhook deliveries failing"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      The webhook actuator gave up on a delivery: the receiver refused it (4xx), answered 410 Gone
      (the endpoint is now disabled), or kept failing for three days. The action was copied to
      `${local.topics.dead_letter}` and the emitting governor recorded an actuation_failed receipt.
      See `GET /v1/actions/{id}/attempts` on `${local.actuator_service_name}`, fix the receiver, and
      replay with `POST /v1/endpoints/{id}/replay?from=&to=`.
    EOT
  }

  conditions {
    display_name = "Deliveries failed for good"
    condition_threshold {
      filter          = "resource.type = \"prometheus_target\" AND resource.label.namespace = \"${local.actuator_service_name}\" AND metric.type = \"${local.actuator_metric_types.failures}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.reason"]
      }
    }
  }
}

output "actuator" {
  description = "The webhook actuator: its URL, push subscription, sweep job and service account."
  value = {
    url             = google_cloud_run_v2_service.actuator.uri
    subscription    = google_pubsub_subscription.actuator.name
    sweep_job       = google_cloud_scheduler_job.actuator_sweep.name
    service_account = google_service_account.actuator.email
  }
}
