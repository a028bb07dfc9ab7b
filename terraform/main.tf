# Autonomics on Google Cloud: everything one environment needs (a project,
# a region and a name prefix).

locals {
  # The eight governors: domain id => the entry point its package under
  # functions/ registers (the package's EntryPoint constant), the domains
  # its machine may cascade to (static cascades and those its Apply
  # functions emit: Machine.CascadeTargets) and whether it actuates
  # (Machine.Actions is not empty). The last two decide which topics its
  # account may publish to (iam.tf); the tests hold them to shared/machines.
  governors = {
    entitlement      = { entry_point = "Entitlement", cascades = ["multi_tenant", "quota_sla", "subscription"], actuates = true }
    billing          = { entry_point = "Billing", cascades = ["subscription"], actuates = true }
    product_catalog  = { entry_point = "ProductCatalog", cascades = [], actuates = false }
    subscription     = { entry_point = "Subscription", cascades = ["billing", "entitlement"], actuates = false }
    customer_account = { entry_point = "CustomerAccount", cascades = ["entitlement", "multi_tenant", "subscription"], actuates = true }
    quota_sla        = { entry_point = "QuotaSLA", cascades = ["billing"], actuates = true }
    compliance_audit = { entry_point = "ComplianceAudit", cascades = ["customer_account"], actuates = false }
    multi_tenant     = { entry_point = "MultiTenant", cascades = [], actuates = true }
  }

  # The HTTP functions of functions/scheduler that Cloud Scheduler calls.
  scheduler_functions = {
    tick  = { entry_point = "Tick", description = "Publishes due governor timers as timeout events." }
    sweep = { entry_point = "Sweep", description = "Re-publishes outbox entries left undelivered by a crash after commit." }
  }

  # Topic ids, as shared/topic names them. Each governor domain has a
  # domain topic, autonomics-<domain with - for _>, where producers outside
  # Autonomics publish (var.producers), and an internal topic,
  # <domain topic>-internal, where only Autonomics publishes: cascades
  # between governors, timeouts from Tick, the monitor's fairness events.
  # Keys: the domain for a domain topic, <domain>_internal for an internal
  # one, the role for the shared topics.
  domain_topics   = { for d in keys(local.governors) : d => "${var.prefix}autonomics-${replace(d, "_", "-")}" }
  internal_topics = { for d, t in local.domain_topics : "${d}_internal" => "${t}-internal" }
  shared_topics = {
    receipts    = "${var.prefix}autonomics-receipts"
    actions     = "${var.prefix}autonomics-actions"
    alerts      = "${var.prefix}autonomics-alerts"
    dead_letter = "${var.prefix}autonomics-dead-letter"
    checkpoints = "${var.prefix}autonomics-checkpoints"
  }
  topics = merge(local.domain_topics, local.internal_topics, local.shared_topics)

  # Configuration every function and service reads through
  # platform.FromEnv (shared/platform/config.go). The ledger's and the
  # monitor's databases are set only on the services that use them
  # (services.tf).
  platform_env = {
    AUTONOMICS_PROJECT            = var.project
    AUTONOMICS_FIRESTORE_DATABASE = local.firestore_database
    AUTONOMICS_TOPIC_PREFIX       = var.prefix
    AUTONOMICS_PROVIDER_TENANT    = var.provider_tenant
    AUTONOMICS_TIMERS             = join(",", [for k in sort(keys(var.timers)) : "${k}=${var.timers[k]}"])
    AUTONOMICS_DEDUP_TTL          = var.dedup_ttl
    AUTONOMICS_LOG_LEVEL          = var.log_level
    AUTONOMICS_TELEMETRY          = var.telemetry
    AUTONOMICS_TRACE_SAMPLE_RATIO = tostring(var.trace_sample_ratio)
    # "prod" turns test clocks off everywhere (the engine refuses their
    # timeouts, the console has no clock).
    AUTONOMICS_ENV = var.env
    # No /metrics endpoint in production: metrics go to Google by OTLP.
    AUTONOMICS_METRICS_ADDR = ""
  }

  # The sizing of each Go component (services by name): at least its cpu
  # and memory.
  component_size = merge(
    {
      governor  = var.governor_function
      scheduler = var.scheduler_function
      actuator  = var.actuator_service
      console   = var.console_service
      ingest    = var.ingest_service
    },
    local.service_settings,
    local.marketplace_sizing,
  )
  # Memory in MiB: "512Mi", "1Gi", "512M", "1G".
  component_memory_mib = {
    for name, size in local.component_size : name => (
      trimsuffix(size.memory, "Gi") != size.memory ? tonumber(trimsuffix(size.memory, "Gi")) * 1024 :
      trimsuffix(size.memory, "Mi") != size.memory ? tonumber(trimsuffix(size.memory, "Mi")) :
      trimsuffix(size.memory, "G") != size.memory ? tonumber(trimsuffix(size.memory, "G")) * 1000000000 / 1048576 :
      tonumber(trimsuffix(size.memory, "M")) * 1000000 / 1048576
    )
  }
  # Each Go component's runtime settings (README, "Cost and capacity",
  # measures them). GOMAXPROCS is its vCPUs rounded down, at least 1
  # ("1000m" is 1): Go's own default rounds a CPU limit below 2 up to 2,
  # so that a one-vCPU instance would schedule goroutines on two threads
  # that take turns on one CPU. GOGC=400 lets the heap grow to five times
  # what is live before a collection (a component's live heap is a few
  # MiB), and GOMEMLIMIT, three quarters of the instance's memory, makes
  # the collector work harder before the instance would run out. extra_env
  # may override each.
  go_runtime_env = {
    for name, size in local.component_size : name => {
      GOMAXPROCS = tostring(max(1, floor(trimsuffix(size.cpu, "m") != size.cpu ? tonumber(trimsuffix(size.cpu, "m")) / 1000 : tonumber(size.cpu))))
      GOGC       = "400"
      GOMEMLIMIT = "${floor(local.component_memory_mib[name] * 3 / 4)}MiB"
    }
  }

  # Production uses the project's (default) database (the free tier applies
  # to it); a prefixed environment gets a database of its own, since
  # collections carry no prefix.
  firestore_database = (
    var.firestore_database != "" ? var.firestore_database :
    var.prefix == "" ? "(default)" : "${trimsuffix(var.prefix, "-")}-autonomics"
  )
  # The ledger and the monitor's state live in databases of their own, so
  # that IAM can keep the integrator and the monitor from writing governor
  # state and receipts (iam.tf).
  ledger_database    = "${var.prefix}autonomics-ledger"
  monitor_database   = "${var.prefix}autonomics-monitor"
  firestore_location = var.firestore_location != "" ? var.firestore_location : var.region
  pubsub_agent       = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

resource "google_project_service" "enabled" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "cloudtrace.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
    "telemetry.googleapis.com",
  ])

  service = each.value
  # Other environments in the project may still use them.
  disable_on_destroy = false
}

# The Pub/Sub service agent forwards dead-lettered messages; creating the
# identity up front lets the IAM grants name it on the first apply.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta
  service  = "pubsub.googleapis.com"

  depends_on = [google_project_service.enabled]
}
