# The Autonomics dashboard: decisions, latency and contention of the
# governors, the outbox, dead letters, timers, the ledger, the actuators,
# the ingest API and the Marketplace side from the metrics the code
# records (local.metric_types), and the health of the
# monitor, the scheduled jobs and the Cloud Run services and functions
# from Google Cloud's own metrics. Two charts a row, 24 of 48 columns
# each; the README shows the layout.

locals {
  # Every Cloud Run service of this environment: the functions and the
  # query, monitor and integrator services.
  run_scope = "resource.type = \"cloud_run_revision\" AND resource.label.service_name = starts_with(\"${var.prefix}autonomics-\")"

  # The charts, row by row, left then right. Each data set is one line
  # group: a filter, how each series is aligned and how series are
  # combined (by the labels in group_by), and the legend.
  dashboard_charts = [
    {
      title = "Decisions by domain (per second)"
      axis  = "decisions/s"
      data = [
        { filter = "metric.type = \"${local.metric_types.decisions}\" AND ${local.metric_scope}", align = "ALIGN_RATE", reduce = "REDUCE_SUM", group_by = ["metric.label.\"domain\""], legend = "$${metric.labels.domain}" },
      ]
    },
    {
      title = "Rejections by domain (per second)"
      axis  = "rejections/s"
      data = [
        { filter = "metric.type = \"${local.metric_types.rejections}\" AND ${local.metric_scope}", align = "ALIGN_RATE", reduce = "REDUCE_SUM", group_by = ["metric.label.\"domain\""], legend = "$${metric.labels.domain}" },
      ]
    },
    {
      title = "Decision latency, delivery to commit (ms)"
      axis  = "ms"
      data = [
        for p in [50, 95, 99] : { filter = "metric.type = \"${local.metric_types.decision_latency}\" AND ${local.metric_scope}", align = "ALIGN_DELTA", reduce = "REDUCE_PERCENTILE_${p}", group_by = [], legend = "p${p}" }
      ]
    },
    {
      title = "Transaction retries by domain (per second) and attempts (p99)"
      axis  = "retries/s"
      data = [
        { filter = "metric.type = \"${local.metric_types.transaction_retries}\" AND ${local.metric_scope}", align = "ALIGN_RATE", reduce = "REDUCE_SUM", group_by = ["metric.label.\"domain\""], legend = "retries $${metric.labels.domain}" },
        { filter = "metric.type = \"${local.metric_types.transaction_attempts}\" AND ${local.metric_scope}", align = "ALIGN_DELTA", reduce = "REDUCE_PERCENTILE_99", group_by = [], legend = "attempts p99", axis = "Y2" },
      ]
    },
    {
      title = "Outbox backlog (entries older than the sweep age)"
      axis  = "entries"
      data = [
        { filter = "metric.type = \"${local.metric_types.outbox_backlog}\" AND ${local.metric_scope}", align = "ALIGN_MAX", reduce = "REDUCE_MAX", group_by = [], legend = "backlog" },
      ]
    },
    {
      title = "Dead letters (per second)"
      axis  = "messages/s"
      data = [
        { filter = "metric.type = \"${local.metric_types.dead_lettered}\" AND ${local.metric_scope}", align = "ALIGN_RATE", reduce = "REDUCE_SUM", group_by = ["metric.label.\"domain\"", "metric.label.\"code\""], legend = "invalid $${metric.labels.domain} $${metric.labels.code}" },
        { filter = "metric.type = \"pubsub.googleapis.com/subscription/dead_letter_message_count\" AND resource.type = \"pubsub_subscription\" AND resource.label.subscription_id = one_of(${local.quoted_subscriptions})", align = "ALIGN_RATE", reduce = "REDUCE_SUM", group_by = ["resource.label.\"subscription_id\""], legend = "undeliverable $${resource.labels.subscription_id}" },
      ]
    },
    {
      title = "Timer lag, due to fired (ms)"
      axis  = "ms"
      data = [
        for p in [50, 99] : { filter = "metric.type = \"${local.metric_types.timer_lag}\" AND ${local.metric_scope}", align = "ALIGN_DELTA", reduce = "REDUCE_PERCENTILE_${p}", group_by = [], legend = "p${p}" }
      ]
    },
    {
      title = "Ledger: receipts refused by the integrator (per second)"
      axis  = "receipts/s"
      data = [
        { filter = "metric.type = \"${local.metric_types.ledger_refused}\" AND ${local.metric_scope}", align = "ALIGN_RATE", reduce = "REDUCE_SUM", group_by = ["metric.label.\"reason\""], legend = "$${metric.labels.reason}" },
      ]
    },
    {
      title = "Actions that failed for good, by kind and reason (per second)"
      axis  = "actions/s"
      data = [
        { filter = "metric.type = \"${local.metric_types.actuator_failures}\" AND ${local.metric_scope}", align = "ALIGN_RATE", reduce = "REDUCE_SUM", group_by = ["metric.label.\"kind\"", "metric.label.\"reason\""], legend = "$${metric.labels.kind} $${metric.labels.reason}" },
      ]
    },
    {
      title = "Ingest API: events answered, by producer and outcome (per second)"
      axis  = "events/s"
      data = [
        { filter = "metric.type = \"${local.metric_types.ingest_events}\" AND ${local.metric_scope}", align = "ALIGN_RATE", reduce = "REDUCE_SUM", group_by = ["metric.label.\"producer\"", "metric.label.\"outcome\""], legend = "$${metric.labels.producer} $${metric.labels.outcome}" },
      ]
    },
    {
      title = "Marketplace notifications, by event type and outcome (per second)"
      axis  = "notifications/s"
      data = [
        { filter = "metric.type = \"${local.metric_types.marketplace_notifications}\" AND ${local.metric_scope}", align = "ALIGN_RATE", reduce = "REDUCE_SUM", group_by = ["metric.label.\"event_type\"", "metric.label.\"outcome\""], legend = "$${metric.labels.event_type} $${metric.labels.outcome}" },
      ]
    },
    {
      title = "Procurement API calls, by action kind and outcome (per second)"
      axis  = "actions/s"
      data = [
        { filter = "metric.type = \"${local.metric_types.marketplace_actions}\" AND ${local.metric_scope}", align = "ALIGN_RATE", reduce = "REDUCE_SUM", group_by = ["metric.label.\"kind\"", "metric.label.\"outcome\""], legend = "$${metric.labels.kind} $${metric.labels.outcome}" },
      ]
    },
    {
      title = "Marketplace drift found by reconciliation, by state"
      axis  = "entitlements"
      data = [
        { filter = "metric.type = \"${local.metric_types.marketplace_drift}\" AND ${local.metric_scope}", align = "ALIGN_DELTA", reduce = "REDUCE_SUM", group_by = ["metric.label.\"state\""], legend = "$${metric.labels.state}" },
      ]
    },
    {
      title = "Marketplace usage reports and sign-ups, by outcome"
      axis  = "reports"
      data = [
        { filter = "metric.type = \"${local.metric_types.marketplace_usage_reports}\" AND ${local.metric_scope}", align = "ALIGN_DELTA", reduce = "REDUCE_SUM", group_by = ["metric.label.\"outcome\""], legend = "usage $${metric.labels.outcome}" },
        { filter = "metric.type = \"${local.metric_types.marketplace_signups}\" AND ${local.metric_scope}", align = "ALIGN_DELTA", reduce = "REDUCE_SUM", group_by = ["metric.label.\"outcome\""], legend = "sign-ups $${metric.labels.outcome}", axis = "Y2" },
      ]
    },
    {
      title = "Monitor health: requests by response class, failed evaluations"
      axis  = "requests/s"
      data = [
        { filter = "metric.type = \"run.googleapis.com/request_count\" AND resource.type = \"cloud_run_revision\" AND resource.label.service_name = \"${local.monitor_service}\"", align = "ALIGN_RATE", reduce = "REDUCE_SUM", group_by = ["metric.label.\"response_code_class\""], legend = "$${metric.labels.response_code_class}" },
        { filter = "metric.type = \"logging.googleapis.com/user/${google_logging_metric.scheduler_job_failures.name}\" AND resource.type = \"cloud_scheduler_job\" AND metric.label.job_id = \"${var.prefix}autonomics-evaluate\"", align = "ALIGN_SUM", reduce = "REDUCE_SUM", group_by = [], legend = "failed evaluations", axis = "Y2" },
      ]
    },
    {
      title = "Scheduled jobs: failed attempts by job"
      axis  = "failures"
      data = [
        { filter = "metric.type = \"logging.googleapis.com/user/${google_logging_metric.scheduler_job_failures.name}\" AND resource.type = \"cloud_scheduler_job\"", align = "ALIGN_SUM", reduce = "REDUCE_SUM", group_by = ["metric.label.\"job_id\""], legend = "$${metric.labels.job_id}" },
      ]
    },
    {
      title = "Instances by function and service"
      axis  = "instances"
      data = [
        { filter = "metric.type = \"run.googleapis.com/container/instance_count\" AND ${local.run_scope}", align = "ALIGN_MAX", reduce = "REDUCE_SUM", group_by = ["resource.label.\"service_name\""], legend = "$${resource.labels.service_name}" },
      ]
    },
    {
      title = "Errors (5xx) by function and service (per second)"
      axis  = "responses/s"
      data = [
        { filter = "metric.type = \"run.googleapis.com/request_count\" AND ${local.run_scope} AND metric.label.response_code_class = \"5xx\"", align = "ALIGN_RATE", reduce = "REDUCE_SUM", group_by = ["resource.label.\"service_name\""], legend = "$${resource.labels.service_name}" },
      ]
    },
  ]

  dashboard_tiles = [
    for i, c in local.dashboard_charts : {
      xPos   = (i % 2) * 24
      yPos   = floor(i / 2) * 16
      width  = 24
      height = 16
      widget = {
        title = c.title
        xyChart = {
          dataSets = [
            for d in c.data : {
              plotType           = "LINE"
              targetAxis         = try(d.axis, "Y1")
              legendTemplate     = d.legend
              minAlignmentPeriod = "60s"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = d.filter
                  aggregation = {
                    alignmentPeriod    = "60s"
                    perSeriesAligner   = d.align
                    crossSeriesReducer = d.reduce
                    groupByFields      = d.group_by
                  }
                }
              }
            }
          ]
          yAxis = { label = c.axis, scale = "LINEAR" }
        }
      }
    }
  ]
}

resource "google_monitoring_dashboard" "overview" {
  dashboard_json = jsonencode({
    displayName = "Autonomics ${var.prefix}overview"
    mosaicLayout = {
      columns = 48
      tiles   = local.dashboard_tiles
    }
  })

  depends_on = [google_project_service.enabled]
}
