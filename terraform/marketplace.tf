# Google Cloud Marketplace (services/marketplace, services/signup,
# shared/marketplace): notifications from the Marketplace topic become
# governor events, the governors' marketplace.* actions become Procurement
# API calls, entitlements are reconciled with the governors on a schedule
# and usage is reported to Service Control every hour; the sign-up page
# receives the customers Marketplace sends over.
#
# Two services with two identities. The marketplace service is private:
# Pub/Sub pushes the notifications and the actions to it, Cloud Scheduler
# calls the reconciliation and the usage report, and nobody else may
# invoke it. The sign-up service is public: a customer's browser posts the
# Marketplace JWT to it, and it authenticates every request by that token
# (RS256, Google's certificates, audience = the provider's domain), so
# Cloud Run's invoker check is off for it as for the ingest API.
#
# What the marketplace identity holds: publisher on the entitlement and
# customer_account domain topics (events learned from Marketplace, as a
# producer would publish them), on their internal topics (actuation_failed,
# usage_blocked/usage_restored, which only Autonomics may send) and on the
# dead-letter topic; datastore.user on the monitor's database (links,
# usage windows), datastore.viewer on the governors' database (it reads
# instances to reconcile and to report usage, and writes no governor
# state). The sign-up identity publishes to the customer_account domain
# topic and writes the monitor's database. The Procurement API and Service
# Control are Google's: access to them is granted in Producer Portal to
# the marketplace identity (terraform/README.md), not here.
#
# Everything below exists only with var.marketplace.enabled.

variable "marketplace" {
  description = <<-EOT
    Selling on Google Cloud Marketplace. enabled creates the marketplace and sign-up services, the
    push subscriptions of the Marketplace topic and of marketplace.* actions, and the scheduled
    reconciliation and usage report. provider_id is the partner id of Producer Portal
    (AUTONOMICS_MARKETPLACE_PROVIDER); partner_topic the full name of the Pub/Sub topic Marketplace
    publishes to, projects/cloudcommerceproc-prod/topics/<name>; service_name the Service Control
    service usage is reported against (Producer Portal's "Service domain",
    AUTONOMICS_MARKETPLACE_SERVICE); signup_audience the audience of the sign-up JWTs, the provider's
    domain (AUTONOMICS_MARKETPLACE_SIGNUP_AUDIENCE); signup_redirect where the sign-up page sends the
    customer once signed up (empty: a page of its own); usage_metrics maps a quota metric the
    governors hold to the Service Control metric it is reported as (AUTONOMICS_MARKETPLACE_USAGE_METRICS);
    reconcile_schedule and usage_schedule are cron schedules (UTC).
  EOT
  type = object({
    enabled            = optional(bool, false)
    provider_id        = optional(string, "")
    partner_topic      = optional(string, "")
    service_name       = optional(string, "")
    signup_audience    = optional(string, "")
    signup_redirect    = optional(string, "")
    usage_metrics      = optional(map(string), {})
    reconcile_schedule = optional(string, "0 */6 * * *")
    usage_schedule     = optional(string, "5 * * * *")
  })
  default = {}

  validation {
    condition     = !var.marketplace.enabled || can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", var.marketplace.provider_id))
    error_message = "With Marketplace enabled, provider_id is the partner id of Producer Portal (1-63 of [A-Za-z0-9._-])."
  }

  validation {
    condition     = !var.marketplace.enabled || can(regex("^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][A-Za-z0-9._~%+-]{2,254}$", var.marketplace.partner_topic))
    error_message = "With Marketplace enabled, partner_topic is the full name of the Marketplace topic: projects/cloudcommerceproc-prod/topics/<name>."
  }

  validation {
    condition     = !var.marketplace.enabled || trimspace(var.marketplace.signup_audience) != ""
    error_message = "With Marketplace enabled, signup_audience (the provider's domain) is required: an empty audience would accept tokens issued for anyone."
  }

  validation {
    condition     = var.marketplace.signup_redirect == "" || can(regex("^https://", var.marketplace.signup_redirect))
    error_message = "signup_redirect is an https URL, or empty."
  }

  validation {
    condition     = length(var.marketplace.usage_metrics) == 0 || trimspace(var.marketplace.service_name) != ""
    error_message = "usage_metrics are reported to a Service Control service: service_name is required with them."
  }

  validation {
    condition     = alltrue([for k, v in var.marketplace.usage_metrics : trimspace(k) != "" && trimspace(v) != ""])
    error_message = "usage_metrics maps quota metric names to Service Control metric names, neither empty."
  }
}

variable "marketplace_service" {
  description = "Sizing of the marketplace and sign-up Cloud Run services, by service (marketplace, signup); what is not given keeps the defaults (512Mi, 1 vCPU, 80 concurrent requests, 0-3 instances)."
  type = map(object({
    memory        = optional(string)
    cpu           = optional(string)
    concurrency   = optional(number)
    min_instances = optional(number)
    max_instances = optional(number)
  }))
  default = {}

  validation {
    condition     = alltrue([for k in keys(var.marketplace_service) : contains(["marketplace", "signup"], k)])
    error_message = "marketplace_service sizes the marketplace and signup services only."
  }
}

locals {
  marketplace_enabled = var.marketplace.enabled
  marketplace_count   = var.marketplace.enabled ? 1 : 0

  marketplace_service_name = "${var.prefix}autonomics-marketplace"
  signup_service_name      = "${var.prefix}autonomics-signup"

  # Google's endpoints, named even though they are the clients' defaults:
  # the local stack points the same variables at its stand-in.
  marketplace_procurement_endpoint     = "https://cloudcommerceprocurement.googleapis.com/"
  marketplace_service_control_endpoint = "https://servicecontrol.googleapis.com/"
  # Where Google publishes the certificates that sign the sign-up JWTs
  # (their iss).
  marketplace_signup_issuer = "https://www.googleapis.com/robot/v1/metadata/x509/cloud-commerce-partner@system.gserviceaccount.com"
  # Links and usage windows live in the monitor's database under
  # marketplace/<namespace>; the environment has that database to itself.
  marketplace_namespace = "default"

  # Topics (keys of local.topics) each identity publishes to: the events
  # of entitlements and customer accounts, as a producer (domain topics);
  # actuation_failed and usage_blocked/usage_restored, which only
  # Autonomics sends (internal topics); what it cannot read (dead letter).
  # The sign-up page only says that a customer signed up.
  marketplace_publishes = ["entitlement", "customer_account", "entitlement_internal", "customer_account_internal", "dead_letter"]
  signup_publishes      = ["customer_account"]

  marketplace_sizing = {
    for s in ["marketplace", "signup"] : s => merge(
      { memory = "512Mi", cpu = "1", concurrency = 80, min_instances = 0, max_instances = 3 },
      { for k, v in try(var.marketplace_service[s], {}) : k => v if v != null },
    )
  }

  marketplace_common_env = {
    # platform.FromEnv reads it for every component; neither service opens
    # the ledger.
    AUTONOMICS_LEDGER_DATABASE = local.ledger_database
    # Links and usage windows, apart from governor state.
    AUTONOMICS_MONITOR_DATABASE     = local.monitor_database
    AUTONOMICS_LISTEN_HOST          = "0.0.0.0"
    AUTONOMICS_MARKETPLACE_PROVIDER = var.marketplace.provider_id
    # The same namespace for both: the sign-up page writes the links the
    # marketplace service resolves.
    AUTONOMICS_MARKETPLACE_NAMESPACE = local.marketplace_namespace
  }

  # Deliveries of an action before Pub/Sub dead-letters it; the actuator
  # fails it for good at the last one (AUTONOMICS_MARKETPLACE_MAX_DELIVERIES).
  marketplace_action_deliveries = 100

  marketplace_env = merge(
    local.platform_env,
    local.marketplace_common_env,
    {
      AUTONOMICS_MARKETPLACE_PROCUREMENT_ENDPOINT     = local.marketplace_procurement_endpoint
      AUTONOMICS_MARKETPLACE_SERVICE_CONTROL_ENDPOINT = local.marketplace_service_control_endpoint
      AUTONOMICS_MARKETPLACE_SERVICE                  = var.marketplace.service_name
      AUTONOMICS_MARKETPLACE_USAGE_METRICS            = jsonencode(var.marketplace.usage_metrics)
      # Only the push identity may hand the Procurement actuator an action.
      AUTONOMICS_MARKETPLACE_PUSH_CALLERS      = google_service_account.push.email
      AUTONOMICS_MARKETPLACE_SCHEDULER_CALLERS = google_service_account.scheduler_invoker.email
      AUTONOMICS_MARKETPLACE_MAX_DELIVERIES    = tostring(local.marketplace_action_deliveries)
    },
    local.go_runtime_env["marketplace"],
    lookup(var.extra_env, "marketplace", {}),
  )

  signup_env = merge(
    local.platform_env,
    local.marketplace_common_env,
    {
      AUTONOMICS_MARKETPLACE_SIGNUP_AUDIENCE = var.marketplace.signup_audience
      AUTONOMICS_MARKETPLACE_SIGNUP_ISSUER   = local.marketplace_signup_issuer
      AUTONOMICS_MARKETPLACE_SIGNUP_REDIRECT = var.marketplace.signup_redirect
    },
    local.go_runtime_env["signup"],
    lookup(var.extra_env, "signup", {}),
  )

  # Subscriptions and scheduled jobs of the Marketplace side, for the
  # alert policies (monitoring.tf).
  marketplace_subscriptions = local.marketplace_enabled ? [
    "${var.prefix}autonomics-marketplace-notifications-push",
    "${local.topics.actions}-marketplace-push",
  ] : []
  marketplace_jobs = local.marketplace_enabled ? [
    "${var.prefix}autonomics-marketplace-reconcile",
    "${var.prefix}autonomics-marketplace-usage",
  ] : []
}

resource "google_service_account" "marketplace" {
  count = local.marketplace_count

  account_id   = "${var.prefix}svc-marketplace"
  display_name = "Autonomics Marketplace service (notifications, Procurement API, usage)"

  depends_on = [google_project_service.enabled]
}

resource "google_service_account" "signup" {
  count = local.marketplace_count

  account_id   = "${var.prefix}svc-signup"
  display_name = "Autonomics Marketplace sign-up page"

  depends_on = [google_project_service.enabled]
}

locals {
  marketplace_members = local.marketplace_enabled ? {
    marketplace = "serviceAccount:${google_service_account.marketplace[0].email}"
    signup      = "serviceAccount:${google_service_account.signup[0].email}"
  } : {}

  # Firestore, each grant conditioned on one database: both write their
  # state in the monitor's database; the marketplace service reads the
  # governors' (instances), never writes it.
  marketplace_firestore = local.marketplace_enabled ? {
    "marketplace/main"    = { member = local.marketplace_members.marketplace, role = "roles/datastore.viewer", database = "main" }
    "marketplace/monitor" = { member = local.marketplace_members.marketplace, role = "roles/datastore.user", database = "monitor" }
    "signup/monitor"      = { member = local.marketplace_members.signup, role = "roles/datastore.user", database = "monitor" }
  } : {}

  marketplace_telemetry = var.telemetry != "gcp" ? {} : merge([
    for c, m in local.marketplace_members : {
      "${c}/traces"  = { member = m, role = "roles/telemetry.tracesWriter" }
      "${c}/metrics" = { member = m, role = "roles/telemetry.metricsWriter" }
    }
  ]...)

  marketplace_publisher_grants = local.marketplace_enabled ? merge(
    { for t in local.marketplace_publishes : "marketplace/${t}" => { topic = t, member = local.marketplace_members.marketplace } },
    { for t in local.signup_publishes : "signup/${t}" => { topic = t, member = local.marketplace_members.signup } },
  ) : {}
}

resource "google_project_iam_member" "marketplace_firestore" {
  for_each = local.marketplace_firestore

  project = var.project
  role    = each.value.role
  member  = each.value.member

  condition {
    title       = "${var.prefix}autonomics-firestore-${replace(each.key, "/", "-")}"
    description = "Only the ${each.value.database} Firestore database of this environment."
    expression  = "resource.name == \"projects/${var.project}/databases/${local.firestore_databases[each.value.database]}\""
  }
}

# Traces and metrics over OTLP to the Telemetry API (write only).
resource "google_project_iam_member" "marketplace_telemetry" {
  for_each = local.marketplace_telemetry

  project = var.project
  role    = each.value.role
  member  = each.value.member
}

resource "google_pubsub_topic_iam_member" "marketplace_publisher" {
  for_each = local.marketplace_publisher_grants

  topic  = google_pubsub_topic.topic[each.value.topic].name
  role   = "roles/pubsub.publisher"
  member = each.value.member
}

resource "google_cloud_run_v2_service" "marketplace" {
  count = local.marketplace_count

  name        = local.marketplace_service_name
  location    = var.region
  description = "Autonomics Marketplace service: notifications to governor events, marketplace.* actions to the Procurement API, reconciliation, usage reports."
  # Only Pub/Sub pushes and Cloud Scheduler call it.
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = var.deletion_protection
  labels              = { component = "marketplace" }

  template {
    service_account                  = google_service_account.marketplace[0].email
    max_instance_request_concurrency = local.marketplace_sizing.marketplace.concurrency
    # A reconciliation lists every entitlement by state; a usage report
    # checks and reports every usage-priced entitlement.
    timeout = "300s"

    scaling {
      min_instance_count = local.marketplace_sizing.marketplace.min_instances
      max_instance_count = local.marketplace_sizing.marketplace.max_instances
    }

    containers {
      image = "${local.image_repository}/marketplace:${var.image_tag}"

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = local.marketplace_sizing.marketplace.cpu
          memory = local.marketplace_sizing.marketplace.memory
        }
        # Every call is answered once its work is done (Procurement calls
        # retried within the request, or left to Pub/Sub's redelivery);
        # nothing runs between requests.
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.marketplace_env
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
    google_project_iam_member.marketplace_firestore,
    google_pubsub_topic_iam_member.marketplace_publisher,
  ]
}

# Nobody but the push identity (notifications, actions) and the scheduler
# identity (reconciliation, usage) may call the marketplace service.
resource "google_cloud_run_v2_service_iam_member" "marketplace_invoker" {
  for_each = local.marketplace_enabled ? {
    push      = "serviceAccount:${google_service_account.push.email}"
    scheduler = "serviceAccount:${google_service_account.scheduler_invoker.email}"
  } : {}

  location = google_cloud_run_v2_service.marketplace[0].location
  name     = google_cloud_run_v2_service.marketplace[0].name
  role     = "roles/run.invoker"
  member   = each.value
}

resource "google_cloud_run_v2_service" "signup" {
  count = local.marketplace_count

  name        = local.signup_service_name
  location    = var.region
  description = "Autonomics Marketplace sign-up page: verifies the Marketplace JWT, links the account to a tenant, reports the sign-up."
  # Customers' browsers post to it from anywhere; it authenticates every
  # request by its Marketplace JWT. The invoker check is off (no allUsers
  # binding, so it also works under a domain-restricted-sharing policy).
  ingress              = "INGRESS_TRAFFIC_ALL"
  invoker_iam_disabled = true
  deletion_protection  = var.deletion_protection
  labels               = { component = "signup" }

  template {
    service_account                  = google_service_account.signup[0].email
    max_instance_request_concurrency = local.marketplace_sizing.signup.concurrency
    timeout                          = "30s"

    scaling {
      min_instance_count = local.marketplace_sizing.signup.min_instances
      max_instance_count = local.marketplace_sizing.signup.max_instances
    }

    containers {
      image = "${local.image_repository}/signup:${var.image_tag}"

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = local.marketplace_sizing.signup.cpu
          memory = local.marketplace_sizing.signup.memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.signup_env
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
    google_project_iam_member.marketplace_firestore,
    google_pubsub_topic_iam_member.marketplace_publisher,
  ]
}

# The Marketplace topic is Google's (cloudcommerceproc-prod); the
# subscription is this project's. Creating it takes
# pubsub.topics.attachSubscription on that topic, which Google grants to
# the account linked in Producer Portal under "subscribe to Pub/Sub
# topic": link the identity that runs Terraform (README). Messages carry
# only ids and come in any order, duplicates included: no ordering.
resource "google_pubsub_subscription" "marketplace_notifications" {
  count = local.marketplace_count

  name                       = "${var.prefix}autonomics-marketplace-notifications-push"
  topic                      = var.marketplace.partner_topic
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.marketplace[0].uri}/v1/notifications/push"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloud_run_v2_service.marketplace[0].uri
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

  depends_on = [google_cloud_run_v2_service_iam_member.marketplace_invoker]
}

resource "google_pubsub_subscription_iam_member" "marketplace_notifications_dead_letter_ack" {
  count = local.marketplace_count

  subscription = google_pubsub_subscription.marketplace_notifications[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# The governors' marketplace.* actions (the engine names the kind in the
# "action" attribute), a tenant's in publish order: an account is approved
# before its entitlements.
resource "google_pubsub_subscription" "marketplace_actions" {
  count = local.marketplace_count

  name                       = "${local.topics.actions}-marketplace-push"
  topic                      = google_pubsub_topic.topic["actions"].id
  filter                     = "hasPrefix(attributes.action, \"marketplace.\")"
  ack_deadline_seconds       = 120
  message_retention_duration = "604800s"
  enable_message_ordering    = var.message_ordering

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.marketplace[0].uri}/v1/actions/push"

    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = google_cloud_run_v2_service.marketplace[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  # Pub/Sub gives up only after the actuator has: 100 deliveries 10 s to
  # 10 min apart outlast its hour of retries, after which it reports
  # actuation_failed itself (and, at the last delivery, in any case).
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.topic["dead_letter"].id
    max_delivery_attempts = local.marketplace_action_deliveries
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_v2_service_iam_member.marketplace_invoker]
}

resource "google_pubsub_subscription_iam_member" "marketplace_actions_dead_letter_ack" {
  count = local.marketplace_count

  subscription = google_pubsub_subscription.marketplace_actions[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

locals {
  marketplace_jobs_spec = local.marketplace_enabled ? {
    reconcile = {
      path        = "/v1/reconcile"
      schedule    = var.marketplace.reconcile_schedule
      description = "Compares the Procurement API's entitlements with the governors and publishes corrective events for any drift."
      # The next run does the same work.
      retries = 0
    }
    usage = {
      path        = "/v1/usage/report"
      schedule    = var.marketplace.usage_schedule
      description = "Reports the last hours' usage of usage-priced entitlements to Service Control (check, then report)."
      # Usage is due within the hour; a retry reports nothing twice
      # (deterministic operation ids, recorded windows).
      retries = 3
    }
  } : {}
}

resource "google_cloud_scheduler_job" "marketplace" {
  for_each = local.marketplace_jobs_spec

  name             = "${var.prefix}autonomics-marketplace-${each.key}"
  description      = each.value.description
  region           = var.region
  schedule         = each.value.schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "320s"

  retry_config {
    retry_count          = each.value.retries
    min_backoff_duration = "60s"
    max_backoff_duration = "600s"
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.marketplace[0].uri}${each.value.path}"

    oidc_token {
      service_account_email = google_service_account.scheduler_invoker.email
      audience              = google_cloud_run_v2_service.marketplace[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.marketplace_invoker]
}

# Procurement calls that failed for good (the governor recorded an
# actuation_failed receipt) and usage that could not be reported, or whose
# check Service Control refused (the entitlement is suspended until it
# passes again).
resource "google_monitoring_alert_policy" "marketplace" {
  count = local.marketplace_count

  display_name          = "Autonomics ${var.prefix}Marketplace calls failing"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      The Marketplace side of Autonomics could not do what Google Cloud Marketplace expects:
      a Procurement API call failed for good (the emitting governor recorded an actuation_failed
      receipt; the customer waits for an approval that did not happen), or usage could not be
      reported to `${var.marketplace.service_name}`, or Service Control refused its check (the
      entitlement is suspended until the check passes again). See the logs of
      `${local.marketplace_service_name}` for the action id or the entitlement, and the receipts of
      the tenant.
    EOT
  }

  conditions {
    display_name = "Procurement actions failed for good"
    condition_threshold {
      filter          = "resource.type = \"prometheus_target\" AND resource.label.namespace = \"${local.marketplace_service_name}\" AND metric.type = \"${local.metric_types.marketplace_actions}\" AND metric.label.outcome = \"failed\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.kind"]
      }
    }
  }

  conditions {
    display_name = "Usage not reported or its check refused"
    condition_threshold {
      filter          = "resource.type = \"prometheus_target\" AND resource.label.namespace = \"${local.marketplace_service_name}\" AND metric.type = \"${local.metric_types.marketplace_usage_reports}\" AND metric.label.outcome = one_of(\"check_failed\", \"failed\")"
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.outcome"]
      }
    }
  }
}

output "marketplace" {
  description = "The Marketplace side, null unless var.marketplace.enabled: the sign-up URL to enter in Producer Portal, the service account to link there (Procurement API, Service Control), the subscriptions and jobs."
  value = local.marketplace_enabled ? {
    signup_url                = "${google_cloud_run_v2_service.signup[0].uri}/signup"
    service_url               = google_cloud_run_v2_service.marketplace[0].uri
    service_account           = google_service_account.marketplace[0].email
    signup_service_account    = google_service_account.signup[0].email
    notification_subscription = google_pubsub_subscription.marketplace_notifications[0].name
    action_subscription       = google_pubsub_subscription.marketplace_actions[0].name
    reconcile_job             = google_cloud_scheduler_job.marketplace["reconcile"].name
    usage_job                 = google_cloud_scheduler_job.marketplace["usage"].name
  } : null
}
