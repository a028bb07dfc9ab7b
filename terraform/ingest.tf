# The ingest API (services/ingest, shared/ingest): producers outside
# Autonomics POST CloudEvents over HTTPS, authenticated by a Google-signed
# ID token (Google identities) or an HMAC signature (systems outside
# Google); the API checks each event as the governors will and publishes
# the accepted ones to the domain topics, answering per event.
#
# HMAC callers hold no Google identity, so Cloud Run cannot authenticate
# them: the service takes every request at the Cloud Run layer (the invoker
# IAM check is disabled, which needs no allUsers binding and so also works
# under a domain-restricted-sharing policy) and authenticates each request
# itself. An IAM-protected service would not help the ID-token callers
# either: Cloud Run replaces the signature of a token it checked, so the
# service could not verify it again.

variable "ingest_producers" {
  description = <<-EOT
    The producers the ingest API accepts events from (AUTONOMICS_INGEST_PRODUCERS, see
    shared/ingest ParseRules): name (the source of its events is ingest/<name>, or
    marketplace/<name> for class marketplace), class (external or marketplace), its identity —
    email (a Google service account whose ID tokens authenticate it) and/or key_ids (HMAC keys
    in the ingest HMAC keys secret) — the event types it may send (exact, or
    autonomics.<domain>.*), the tenants it may send for (ids, or ["*"]), and optionally its rate
    (events per second, default 50) and burst (default 100). The service refuses to start on
    rules it cannot accept, e.g. a type its machine does not take from the producer's class.
  EOT
  type = list(object({
    name    = string
    class   = string
    email   = optional(string)
    key_ids = optional(list(string))
    types   = list(string)
    tenants = list(string)
    rate    = optional(number)
    burst   = optional(number)
  }))
  default = []

  validation {
    condition     = alltrue([for p in var.ingest_producers : contains(["external", "marketplace"], p.class)])
    error_message = "A producer's class is external or marketplace; the other classes are Autonomics' own."
  }

  validation {
    condition     = alltrue([for p in var.ingest_producers : p.email != null || try(length(p.key_ids) > 0, false)])
    error_message = "Every producer has an identity: an email (ID tokens) or key_ids (HMAC)."
  }

  validation {
    condition     = length(distinct([for p in var.ingest_producers : p.name])) == length(var.ingest_producers)
    error_message = "Producer names are unique."
  }

  validation {
    condition     = alltrue([for p in var.ingest_producers : can(regex("^[a-z0-9][a-z0-9._-]{0,62}$", p.name))])
    error_message = "A producer name is 1-63 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit."
  }
}

variable "ingest_audience" {
  description = "Audience the producers' ID tokens must carry (AUTONOMICS_INGEST_AUDIENCE). Empty means <project>/<prefix>autonomics-ingest; the service's URL works too once known."
  type        = string
  default     = ""
}

variable "ingest_service" {
  description = "Sizing of the ingest API's Cloud Run service."
  type = object({
    memory        = optional(string, "512Mi")
    cpu           = optional(string, "1")
    concurrency   = optional(number, 80)
    min_instances = optional(number, 0)
    max_instances = optional(number, 5)
  })
  default = {}
}

locals {
  ingest_audience = var.ingest_audience != "" ? var.ingest_audience : "${var.project}/${var.prefix}autonomics-ingest"

  ingest_env = merge(
    local.platform_env,
    {
      AUTONOMICS_INGEST_PRODUCERS = jsonencode(var.ingest_producers)
      AUTONOMICS_INGEST_AUDIENCE  = local.ingest_audience
      # platform.Connect reads them; the ingest API opens no database, so
      # they name the main one (one client, never used).
      AUTONOMICS_LEDGER_DATABASE  = local.firestore_database
      AUTONOMICS_MONITOR_DATABASE = local.firestore_database
      # Every interface, as Cloud Run requires: the same as unset.
      AUTONOMICS_LISTEN_HOST = ""
    },
    local.go_runtime_env["ingest"],
    lookup(var.extra_env, "ingest", {}),
  )
}

resource "google_service_account" "ingest" {
  account_id   = "${var.prefix}svc-ingest"
  display_name = "Autonomics ingest service"

  depends_on = [google_project_service.enabled]
}

# It publishes accepted events to the eight domain topics, as a producer
# would, and nowhere else: never to an internal topic.
resource "google_pubsub_topic_iam_member" "ingest_publisher" {
  for_each = local.domain_topics

  topic  = google_pubsub_topic.topic[each.key].name
  role   = "roles/pubsub.publisher"
  member = google_service_account.ingest.member
}

# Traces and metrics over OTLP to the Telemetry API, like every component.
resource "google_project_iam_member" "ingest_telemetry" {
  for_each = var.telemetry == "gcp" ? toset(["roles/telemetry.tracesWriter", "roles/telemetry.metricsWriter"]) : toset([])

  project = var.project
  role    = each.value
  member  = google_service_account.ingest.member
}

# The producers' HMAC keys, a JSON object from key id to "whsec_..." key
# (AUTONOMICS_INGEST_HMAC_KEYS). Terraform creates the secret with an empty
# first version, never a key (state must not hold them): add the keys as a
# new version,
#   gcloud secrets versions add <prefix>ingest-hmac-keys --data-file=keys.json
# and roll a new revision (or let instances recycle): instances read the
# latest version when they start. Do not destroy the first version, or
# Terraform creates it again as the latest.
resource "google_secret_manager_secret" "ingest_hmac_keys" {
  secret_id = "${var.prefix}ingest-hmac-keys"

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_version" "ingest_hmac_keys_initial" {
  secret      = google_secret_manager_secret.ingest_hmac_keys.id
  secret_data = "{}"

  lifecycle {
    ignore_changes = [secret_data, enabled]
  }
}

resource "google_secret_manager_secret_iam_member" "ingest_hmac_keys_accessor" {
  secret_id = google_secret_manager_secret.ingest_hmac_keys.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.ingest.member
}

resource "google_cloud_run_v2_service" "ingest" {
  name        = "${var.prefix}autonomics-ingest"
  location    = var.region
  description = "Autonomics ingest API: authenticated CloudEvents from producers, checked and published to the domain topics."
  # Producers call it from anywhere, Google identities and HMAC-signing
  # systems alike; it authenticates every request itself (see above).
  ingress              = "INGRESS_TRAFFIC_ALL"
  invoker_iam_disabled = true
  deletion_protection  = var.deletion_protection
  labels               = { component = "ingest" }

  template {
    service_account                  = google_service_account.ingest.email
    max_instance_request_concurrency = var.ingest_service.concurrency
    timeout                          = "60s"

    scaling {
      min_instance_count = var.ingest_service.min_instances
      max_instance_count = var.ingest_service.max_instances
    }

    containers {
      image = "${local.image_repository}/ingest:${var.image_tag}"

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.ingest_service.cpu
          memory = var.ingest_service.memory
        }
        # It answers after Pub/Sub acknowledged; nothing runs between
        # requests.
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.ingest_env
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name = "AUTONOMICS_INGEST_HMAC_KEYS"
        value_source {
          secret_key_ref {
            secret  = google_secret_manager_secret.ingest_hmac_keys.secret_id
            version = "latest"
          }
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
    google_pubsub_topic_iam_member.ingest_publisher,
    google_secret_manager_secret_iam_member.ingest_hmac_keys_accessor,
    google_secret_manager_secret_version.ingest_hmac_keys_initial,
  ]
}

output "ingest_url" {
  description = "URL of the ingest API; producers POST to <url>/v1/events."
  value       = google_cloud_run_v2_service.ingest.uri
}

output "ingest_audience" {
  description = "Audience of the ID tokens the ingest API accepts."
  value       = local.ingest_audience
}

output "ingest_service_account" {
  description = "Email of the ingest API's service account."
  value       = google_service_account.ingest.email
}

output "ingest_hmac_keys_secret" {
  description = "Secret Manager secret holding the producers' HMAC keys."
  value       = google_secret_manager_secret.ingest_hmac_keys.id
}
