# Alert policies: dead-lettered messages, oldest unacknowledged message age,
# function error rate, the monitor's own health and failing scheduled jobs.
# The dashboard is in dashboard.tf.

locals {
  # The metrics the code records (the instruments of shared/engine and
  # shared/ledger), as Cloud Monitoring stores them when they arrive over
  # OTLP through the Telemetry API: prometheus.googleapis.com/<instrument
  # name>/<counter|gauge|histogram> (shared/telemetry MetricType). The
  # tests hold this map to the instruments of the Go sources.
  metric_types = {
    decisions            = "prometheus.googleapis.com/autonomics.decisions/counter"
    rejections           = "prometheus.googleapis.com/autonomics.rejections/counter"
    transaction_attempts = "prometheus.googleapis.com/autonomics.transaction.attempts/histogram"
    transaction_retries  = "prometheus.googleapis.com/autonomics.transaction.retries/counter"
    decision_latency     = "prometheus.googleapis.com/autonomics.decision.latency/histogram"
    dead_lettered        = "prometheus.googleapis.com/autonomics.dead_lettered/counter"
    outbox_backlog       = "prometheus.googleapis.com/autonomics.outbox.backlog/gauge"
    timer_lag            = "prometheus.googleapis.com/autonomics.timer.lag/histogram"
    ledger_refused       = "prometheus.googleapis.com/autonomics.ledger.receipts.refused/counter"
    actuator_failures    = "prometheus.googleapis.com/autonomics.actuator.failures/counter"
    ingest_events        = "prometheus.googleapis.com/autonomics.ingest.events/counter"
    # The Marketplace side (shared/marketplace): notifications by event
    # type and outcome, drift found by reconciliation, Procurement calls,
    # usage reports, sign-ups.
    marketplace_notifications = "prometheus.googleapis.com/autonomics.marketplace.notifications/counter"
    marketplace_drift         = "prometheus.googleapis.com/autonomics.marketplace.drift/counter"
    marketplace_actions       = "prometheus.googleapis.com/autonomics.marketplace.actions/counter"
    marketplace_usage_reports = "prometheus.googleapis.com/autonomics.marketplace.usage_reports/counter"
    marketplace_signups       = "prometheus.googleapis.com/autonomics.marketplace.signups/counter"
  }
  # Those metrics of this environment: their monitored resource is a
  # prometheus_target whose namespace is the Cloud Run service or function
  # that recorded them (shared/telemetry NamespaceKey), which carries the
  # prefix.
  metric_scope = "resource.type = \"prometheus_target\" AND resource.label.namespace = starts_with(\"${var.prefix}autonomics-\")"

  function_names = concat(
    [for d in keys(local.governors) : "${var.prefix}autonomics-${replace(d, "_", "-")}"],
    [for k in keys(local.scheduler_functions) : "${var.prefix}autonomics-${k}"],
  )
  # Subscriptions whose backlog means work is not getting done (the
  # dead-letter inspection subscription is watched by its own policy).
  delivery_subscriptions = concat(
    [for d in keys(local.governors) : "${local.topics[d]}-push"],
    [for d in keys(local.governors) : "${local.topics["${d}_internal"]}-push"],
    [for c in keys(local.receipt_consumers) : "${local.topics.receipts}-${c}-push"],
    # Marketplace notifications and marketplace.* actions (marketplace.tf).
    local.marketplace_subscriptions,
    # Dead letters to the console (console.tf).
    ["${local.topics.dead_letter}-console-push"],
  )
  monitor_service = "${var.prefix}autonomics-monitor"
  scheduler_jobs = concat(
    [for k in concat(keys(local.scheduler_functions), keys(local.service_jobs)) : "${var.prefix}autonomics-${k}"],
    local.marketplace_jobs,
  )

  quoted_subscriptions  = join(", ", [for s in local.delivery_subscriptions : "\"${s}\""])
  notification_channels = [for c in google_monitoring_notification_channel.email : c.id]
}

resource "google_monitoring_notification_channel" "email" {
  for_each = toset(var.alert_emails)

  display_name = "Autonomics ${var.prefix}alerts: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "dead_letters" {
  display_name          = "Autonomics ${var.prefix}dead-lettered messages"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      Messages reached `${local.topics.dead_letter}`: bad input copied there by a governor (with
      the reason in its attributes), or deliveries that failed ${var.governor_function.max_delivery_attempts}
      times. Inspect them on the console's dead-letter page (`autonomicsctl dlq list`) or with
      `gcloud pubsub subscriptions pull ${google_pubsub_subscription.dead_letter.name} --limit 10`,
      fix the cause, and replay an external event to its domain topic if it is still wanted
      (`autonomicsctl dlq replay ID`; internal topics take only Autonomics' own accounts).
    EOT
  }

  conditions {
    display_name = "Dead-letter inspection backlog above zero"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.label.subscription_id = \"${google_pubsub_subscription.dead_letter.name}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  conditions {
    display_name = "Subscription forwarded messages to the dead-letter topic"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.label.subscription_id = one_of(${local.quoted_subscriptions}) AND metric.type = \"pubsub.googleapis.com/subscription/dead_letter_message_count\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_DELTA"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "oldest_unacked" {
  display_name          = "Autonomics ${var.prefix}oldest unacknowledged message"
  combiner              = "OR"
  severity              = "WARNING"
  notification_channels = local.notification_channels

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      A governor, the monitor, the integrator, the Marketplace service or the console has not acknowledged a
      message for more than ${var.oldest_unacked_alert_seconds} seconds: the function or service
      fails or is throttled, or an ordering key is blocked behind a message being retried. Check
      its logs and error rate.
    EOT
  }

  conditions {
    display_name = "Oldest unacked message age"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.label.subscription_id = one_of(${local.quoted_subscriptions}) AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.oldest_unacked_alert_seconds
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "function_errors" {
  display_name          = "Autonomics ${var.prefix}function error rate"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      More than ${var.function_error_ratio * 100}% of the requests to a function failed over five
      minutes. A governor returns an error only for transient faults (Firestore or Pub/Sub
      unavailable, contention exhausted), which Pub/Sub redelivers; a lasting rate means a
      dependency is down or the deployment is misconfigured (see the function's logs).
    EOT
  }

  conditions {
    display_name = "5xx share of function requests"
    condition_prometheus_query_language {
      query               = <<-EOT
        sum by (service_name) (rate(run_googleapis_com:request_count{monitored_resource="cloud_run_revision",service_name=~"${join("|", local.function_names)}",response_code_class="5xx"}[5m]))
        /
        sum by (service_name) (rate(run_googleapis_com:request_count{monitored_resource="cloud_run_revision",service_name=~"${join("|", local.function_names)}"}[5m]))
        > ${var.function_error_ratio}
      EOT
      duration            = "300s"
      evaluation_interval = "60s"
    }
  }
}

# Failed Cloud Scheduler attempts, by job: tick, sweep, the monitor's
# evaluation and the integrator.
resource "google_logging_metric" "scheduler_job_failures" {
  name   = "${var.prefix}autonomics-scheduler-job-failures"
  filter = "resource.type=\"cloud_scheduler_job\" AND resource.labels.job_id=~\"^${var.prefix}autonomics-\" AND severity>=ERROR"

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    labels {
      key         = "job_id"
      value_type  = "STRING"
      description = "Cloud Scheduler job id."
    }
  }

  label_extractors = {
    job_id = "EXTRACT(resource.labels.job_id)"
  }

  depends_on = [google_project_service.enabled]
}

resource "google_monitoring_alert_policy" "monitor_health" {
  display_name          = "Autonomics ${var.prefix}monitor health"
  combiner              = "OR"
  severity              = "CRITICAL"
  notification_channels = local.notification_channels

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      The monitor that evaluates the alert policies is itself unhealthy: its evaluation
      calls fail, or it has received no request at all for 15 minutes although Cloud
      Scheduler calls it every minute. Alerts of Autonomics are not being raised meanwhile.
      Check the `${local.monitor_service}` service and the
      `${var.prefix}autonomics-evaluate` job.
    EOT
  }

  conditions {
    display_name = "Evaluation calls failing"
    condition_threshold {
      filter          = "resource.type = \"cloud_scheduler_job\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.scheduler_job_failures.name}\" AND metric.label.job_id = \"${var.prefix}autonomics-evaluate\""
      comparison      = "COMPARISON_GT"
      threshold_value = 2
      duration        = "0s"
      aggregations {
        alignment_period   = "600s"
        per_series_aligner = "ALIGN_SUM"
      }
    }
  }

  conditions {
    display_name = "No requests reach the monitor"
    condition_absent {
      filter   = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = \"${local.monitor_service}\" AND metric.type = \"run.googleapis.com/request_count\""
      duration = "900s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
}

resource "google_monitoring_alert_policy" "scheduler_jobs" {
  display_name          = "Autonomics ${var.prefix}scheduled jobs failing"
  combiner              = "OR"
  severity              = "ERROR"
  notification_channels = local.notification_channels

  documentation {
    mime_type = "text/markdown"
    content   = <<-EOT
      A Cloud Scheduler job of Autonomics (${join(", ", local.scheduler_jobs)}) failed
      more than once in ten minutes: timers do not fire (tick), undelivered outbox entries stay
      behind (sweep), alerts are not evaluated (evaluate), the ledger falls behind
      (integrate), or Marketplace drift stays uncorrected and usage unreported
      (marketplace-reconcile, marketplace-usage, with Marketplace enabled). See the job's logs
      and the target's.
    EOT
  }

  conditions {
    display_name = "Failed attempts per job"
    condition_threshold {
      filter          = "resource.type = \"cloud_scheduler_job\" AND metric.type = \"logging.googleapis.com/user/${google_logging_metric.scheduler_job_failures.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "0s"
      aggregations {
        alignment_period     = "600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.job_id"]
      }
    }
  }
}
