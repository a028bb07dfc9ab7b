# The Cloud Run services, from images that Cloud Build pushes to the
# Artifact Registry repository below (terraform/docker/service.Dockerfile).

locals {
  services = {
    query = {
      description = "Autonomics query API: governors, receipts and chain verification per tenant."
      # Called by operators and tools from outside; IAM decides who.
      ingress     = "INGRESS_TRAFFIC_ALL"
      invokers    = var.query_invokers
      health_path = "/healthz"
      scaling     = { min_instances = 0, max_instances = 3 }
      env = {
        # It serves the ledger the integrator writes.
        AUTONOMICS_LEDGER_DATABASE = local.ledger_database
      }
      secret_env = {}
    }
    monitor = {
      description = "Autonomics monitor: health, metric policies, alerts and fairness."
      # Its API (policies, metrics, silences) serves operators; Pub/Sub and
      # Cloud Scheduler reach it too. IAM decides who.
      ingress     = "INGRESS_TRAFFIC_ALL"
      invokers    = var.monitor_invokers
      health_path = "/healthz"
      # The default scaling (local.service_defaults): it holds no series
      # (Managed Service for Prometheus does) and evaluation holds a lease
      # in Firestore, so any number of instances may serve, from zero.
      env = {
        # Its policies, silences, alerts and leases, apart from governor
        # state (which it only reads).
        AUTONOMICS_MONITOR_DATABASE = local.monitor_database
        # Environments have a database each; the namespace names them anyway.
        AUTONOMICS_MONITOR_NAMESPACE = var.prefix == "" ? "default" : trimsuffix(var.prefix, "-")
        # Cloud Scheduler drives evaluation (POST /v1/evaluate) and the
        # instance gets CPU only while serving, so no internal ticker.
        AUTONOMICS_MONITOR_EVAL_INTERVAL = "0"
      }
      secret_env = {}
    }
    integrator = {
      description = "Autonomics ledger integrator: appends receipts to the verifiable log and signs checkpoints."
      # Only Pub/Sub (receipts) and Cloud Scheduler call it.
      ingress     = "INGRESS_TRAFFIC_INTERNAL_ONLY"
      invokers    = []
      health_path = "/healthz"
      # Integration holds a lease. The lease holder's loop integrates the
      # pushes it is answering (the group commit: one write per receipt,
      # the push answered once its checkpoint is committed), so one
      # instance always runs, with its CPU allocated between requests,
      # and takes as many pushes at once as Cloud Run allows: a batch is
      # at most the pushes in flight. A second instance records what it
      # is pushed as pending, for the holder's loop.
      scaling              = { min_instances = 1, max_instances = 2, concurrency = 1000 }
      cpu_always_allocated = true
      env = {
        # The ledger it writes, apart from governor state (which it only
        # reads).
        AUTONOMICS_LEDGER_DATABASE = local.ledger_database
        # The signing key's name; the integrator refuses a key named otherwise.
        AUTONOMICS_LEDGER_ORIGIN = local.ledger_origin
        # The loop: a pass every half second while receipts arrive, and
        # every 2 s while none do (below half the lease's 10 s, so that an
        # idle holder keeps its lease). Cloud Scheduler's POST
        # /v1/integrate runs passes too, should the loop have stopped.
        AUTONOMICS_LEDGER_INTERVAL      = "500ms"
        AUTONOMICS_LEDGER_IDLE_INTERVAL = "2s"
      }
      secret_env = {
        AUTONOMICS_SIGNING_KEY = google_secret_manager_secret.signing_key.secret_id
      }
    }
  }

  # Variables the code reads that this deployment leaves to the code's
  # defaults on purpose (var.extra_env can still set them). Cloud Run
  # services listen on every interface (AUTONOMICS_LISTEN_HOST unset). The monitor's
  # holder id must differ per instance, so it is never set here. Its
  # metrics engine is the code's default, the project's Managed Service for
  # Prometheus with Google credentials (roles/monitoring.viewer, iam.tf),
  # and with no remote-write URL its intake (POST /v1/metrics, receipt
  # metrics) forwards to the Telemetry API (roles/telemetry.metricsWriter). A
  # component that does not use the ledger's or the monitor's database
  # leaves its variable to the default (the main database), which it never
  # opens for that purpose.
  env_left_to_code = {
    governor = [
      "AUTONOMICS_MONITOR_DATABASE",
    ]
    scheduler = [
      "AUTONOMICS_MONITOR_DATABASE",
    ]
    monitor = [
      "AUTONOMICS_LISTEN_HOST",
      "AUTONOMICS_LEDGER_DATABASE",
      "AUTONOMICS_MONITOR_HOLDER_ID",
      "AUTONOMICS_MONITOR_LEASE_TTL",
      "AUTONOMICS_MONITOR_REPEAT_INTERVAL",
      "AUTONOMICS_MONITOR_LOOKBACK",
      "AUTONOMICS_MONITOR_RESOLVED_RETENTION",
      "AUTONOMICS_MONITOR_SERIES_RETENTION",
      "AUTONOMICS_MONITOR_PROMETHEUS_URL",
      "AUTONOMICS_MONITOR_PROMETHEUS_AUTH",
      "AUTONOMICS_MONITOR_REMOTE_WRITE_URL",
      "AUTONOMICS_MONITOR_QUERY_PARALLELISM",
      "AUTONOMICS_MONITOR_QUERY_TIMEOUT",
      "AUTONOMICS_MONITOR_RECEIPT_FLUSH_INTERVAL",
      "AUTONOMICS_MONITOR_SAMPLE_MAX_FUTURE",
      "AUTONOMICS_MONITOR_SAMPLE_MAX_AGE",
      "AUTONOMICS_MONITOR_RECEIPT_WINDOW",
      "AUTONOMICS_MONITOR_FAIRNESS",
      "AUTONOMICS_MONITOR_FAIRNESS_METRIC",
      "AUTONOMICS_MONITOR_FAIRNESS_THRESHOLD_BP",
      "AUTONOMICS_MONITOR_FAIRNESS_HYSTERESIS_BP",
      "AUTONOMICS_MONITOR_FAIRNESS_WINDOW",
      "AUTONOMICS_MONITOR_CPU_THRESHOLD",
      "AUTONOMICS_MONITOR_MEMORY_THRESHOLD",
      "AUTONOMICS_MONITOR_OUTBOX_DEGRADED",
      "AUTONOMICS_MONITOR_OUTBOX_CRITICAL",
      "AUTONOMICS_MONITOR_TIMERS_DEGRADED",
      "AUTONOMICS_MONITOR_TIMERS_CRITICAL",
      "AUTONOMICS_MONITOR_CHECK_TIMEOUT",
    ]
    # The query API serves the ledger the integrator writes, both under
    # the default ledger name.
    query = [
      "AUTONOMICS_LISTEN_HOST",
      "AUTONOMICS_LEDGER_NAME",
      "AUTONOMICS_MONITOR_DATABASE",
    ]
    # The key comes from Secret Manager, never from a file; the ledger
    # document, batch size and lease keep their defaults; the holder id
    # must differ per instance.
    integrator = [
      "AUTONOMICS_LISTEN_HOST",
      "AUTONOMICS_SIGNING_KEY_FILE",
      "AUTONOMICS_LEDGER_NAME",
      "AUTONOMICS_LEDGER_BATCH",
      "AUTONOMICS_LEDGER_LEASE_TTL",
      "AUTONOMICS_LEDGER_HOLDER_ID",
      "AUTONOMICS_MONITOR_DATABASE",
    ]
    # The Marketplace service's actuator gives up after the default hour
    # of retries, and usage windows are Marketplace's hour; both are
    # shortened only by the local stack.
    marketplace = [
      "AUTONOMICS_MARKETPLACE_GIVE_UP_AFTER",
      "AUTONOMICS_MARKETPLACE_USAGE_WINDOW",
    ]
    # The console records the ledger's checkpoint in its history every
    # minute while it serves (and on every read of it).
    console = [
      "AUTONOMICS_CONSOLE_CHECKPOINT_INTERVAL",
    ]
  }

  ledger_origin = var.ledger_origin != "" ? var.ledger_origin : "${var.project}/${var.prefix}autonomics-ledger"

  service_defaults = {
    memory        = "512Mi"
    cpu           = "1"
    concurrency   = 80
    min_instances = 0
    max_instances = 3
  }
  service_settings = {
    for s, cfg in local.services : s => merge(
      local.service_defaults,
      try(cfg.scaling, {}),
      { for k, v in try(var.services[s], {}) : k => v if v != null },
    )
  }

  image_repository = "${var.region}-docker.pkg.dev/${var.project}/${google_artifact_registry_repository.images.repository_id}"

  # Who may call each service: the members given in variables, plus the
  # push identity (receipts to the monitor and the integrator), the
  # scheduler identity (the monitor's evaluation, the integration) and the
  # console (the monitor's alerts and silences). Keys
  # are static, so that plans do not depend on account emails that are
  # only known after apply.
  service_invoker_grants = merge(
    merge([for s, cfg in local.services : { for m in cfg.invokers : "${s}/${m}" => { service = s, member = m } }]...),
    {
      "monitor/push" = {
        service = "monitor", member = "serviceAccount:${google_service_account.push.email}"
      }
      "monitor/scheduler" = {
        service = "monitor", member = "serviceAccount:${google_service_account.scheduler_invoker.email}"
      }
      "integrator/push" = {
        service = "integrator", member = "serviceAccount:${google_service_account.push.email}"
      }
      "integrator/scheduler" = {
        service = "integrator", member = "serviceAccount:${google_service_account.scheduler_invoker.email}"
      }
      # The console's alerts and silences pages call the monitor's API
      # (console.tf).
      "monitor/console" = {
        service = "monitor", member = "serviceAccount:${google_service_account.console.email}"
      }
    },
  )
}

resource "google_artifact_registry_repository" "images" {
  repository_id = "${var.prefix}autonomics"
  location      = var.region
  format        = "DOCKER"
  description   = "Autonomics service images."

  # Keep the ten newest images per service and drop the rest after a week.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 10
    }
  }
  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "604800s"
    }
  }

  depends_on = [google_project_service.enabled]
}

# The checkpoint signing key of the ledger. Terraform creates the secret,
# never its value (state must not hold the key): Cloud Build adds the first
# version (`integrator -keygen`, named local.ledger_origin), and rotation
# is a new version.
resource "google_secret_manager_secret" "signing_key" {
  secret_id = "${var.prefix}checkpoint-signing-key"

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret_iam_member" "signing_key_accessor" {
  secret_id = google_secret_manager_secret.signing_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.runtime_members.integrator
}

resource "google_cloud_run_v2_service" "service" {
  for_each = local.services

  name                = "${var.prefix}autonomics-${each.key}"
  location            = var.region
  description         = each.value.description
  ingress             = each.value.ingress
  deletion_protection = var.deletion_protection
  labels              = { component = each.key }

  template {
    service_account                  = google_service_account.service[each.key].email
    max_instance_request_concurrency = local.service_settings[each.key].concurrency

    scaling {
      min_instance_count = local.service_settings[each.key].min_instances
      max_instance_count = local.service_settings[each.key].max_instances
    }

    containers {
      image = "${local.image_repository}/${each.key}:${var.image_tag}"

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = local.service_settings[each.key].cpu
          memory = local.service_settings[each.key].memory
        }
        # CPU only while serving: the services do their periodic work when
        # Cloud Scheduler calls them, so they scale to zero. The
        # integrator's loop needs its CPU between requests.
        cpu_idle          = !try(each.value.cpu_always_allocated, false)
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = merge(local.platform_env, local.go_runtime_env[each.key], each.value.env, lookup(var.extra_env, each.key, {}))
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "startup_probe" {
        for_each = each.value.health_path == "" ? [] : [each.value.health_path]
        content {
          period_seconds    = 2
          failure_threshold = 15
          http_get {
            path = startup_probe.value
          }
        }
      }

      dynamic "liveness_probe" {
        for_each = each.value.health_path == "" ? [] : [each.value.health_path]
        content {
          period_seconds = 30
          http_get {
            path = liveness_probe.value
          }
        }
      }

      dynamic "env" {
        for_each = each.value.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }
    }
  }

  depends_on = [
    google_project_iam_member.grant,
    google_pubsub_topic_iam_member.publisher,
    google_secret_manager_secret_iam_member.signing_key_accessor,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = local.service_invoker_grants

  location = google_cloud_run_v2_service.service[each.value.service].location
  name     = google_cloud_run_v2_service.service[each.value.service].name
  role     = "roles/run.invoker"
  member   = each.value.member
}

# Every receipt reaches the monitor, which derives decision metrics from
# them, and the integrator, which records it for the ledger. Neither needs
# order: counters do not, and the ledger orders entries itself.
locals {
  receipt_consumers = {
    monitor    = { retention = "86400s" }
    integrator = { retention = "604800s" }
  }
}

resource "google_pubsub_subscription" "receipts" {
  for_each = local.receipt_consumers

  name  = "${local.topics.receipts}-${each.key}-push"
  topic = google_pubsub_topic.topic["receipts"].id
  # The integrator answers a push once the receipt is in a checkpoint
  # (group commit): a pass or two.
  ack_deadline_seconds       = 60
  message_retention_duration = each.value.retention

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.service[each.key].uri}/v1/receipts/push"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloud_run_v2_service.service[each.key].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "300s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.topic["dead_letter"].id
    max_delivery_attempts = 10
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_v2_service_iam_member.invoker]
}

resource "google_pubsub_subscription_iam_member" "receipts_dead_letter_ack" {
  for_each = google_pubsub_subscription.receipts

  subscription = each.value.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

locals {
  service_jobs = {
    evaluate = {
      service     = "monitor"
      path        = "/v1/evaluate"
      description = "Evaluates the monitor's policies and fairness (one instance at a time holds the lease)."
    }
    integrate = {
      service     = "integrator"
      path        = "/v1/integrate"
      description = "Appends new receipts to the ledger and signs a checkpoint."
    }
  }
}

resource "google_cloud_scheduler_job" "service" {
  for_each = local.service_jobs

  name             = "${var.prefix}autonomics-${each.key}"
  description      = each.value.description
  region           = var.region
  schedule         = var.schedules[each.key]
  time_zone        = "Etc/UTC"
  attempt_deadline = "120s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.service[each.value.service].uri}${each.value.path}"

    oidc_token {
      service_account_email = google_service_account.scheduler_invoker.email
      audience              = google_cloud_run_v2_service.service[each.value.service].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.invoker]
}
