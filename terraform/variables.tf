variable "project" {
  description = "Google Cloud project id to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions, services, scheduler jobs, bucket and image repository."
  type        = string
  default     = "us-central1"
}

variable "prefix" {
  description = "Prefix of every topic, subscription, function, service, account and of the Firestore database, e.g. \"dev-\", so that several environments share one project. Empty in production. It becomes AUTONOMICS_TOPIC_PREFIX. Cloud Build passes its _PREFIX substitution."
  type        = string
  default     = ""

  validation {
    # Service account ids are at most 30 characters; the longest suffix is 20.
    condition     = can(regex("^([a-z][a-z0-9]{0,8}-)?$", var.prefix))
    error_message = "The prefix is empty or 2-10 characters: a lowercase letter, letters or digits, and a trailing \"-\"."
  }
}

variable "labels" {
  description = "Labels added to every resource that takes labels."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Protect the Firestore database and the Cloud Run services from terraform destroy."
  type        = bool
  default     = true
}

# --- Firestore -------------------------------------------------------------

variable "firestore_database" {
  description = "Firestore database id (AUTONOMICS_FIRESTORE_DATABASE). Empty means \"(default)\" without a prefix and <prefix>-autonomics with one: environments sharing a project need a database each, since collections carry no prefix."
  type        = string
  default     = ""
}

variable "firestore_location" {
  description = "Firestore location (a region such as us-central1, or a multi-region such as nam5). Empty means var.region."
  type        = string
  default     = ""
}

variable "firestore_point_in_time_recovery" {
  description = "Keep 7 days of point-in-time recovery versions of the database."
  type        = bool
  default     = false
}

# --- Code ------------------------------------------------------------------

variable "source_archive" {
  description = "Path of the staged functions source, dist/source-<sha256>.zip as printed by `make stage` (relative to this directory, or absolute)."
  type        = string

  validation {
    condition     = can(regex("source-[0-9a-f]{64}\\.zip$", var.source_archive))
    error_message = "The source archive is the file `go run ./functions/stage` writes: source-<sha256>.zip."
  }
}

variable "function_runtime" {
  description = "Cloud Functions runtime of the functions; at or above the go line of go.mod."
  type        = string
  default     = "go126"
}

variable "image_tag" {
  description = "Tag of the service images (query, monitor, integrator) in the Artifact Registry repository; Cloud Build uses its build id."
  type        = string
  default     = "latest"
}

# --- Runtime configuration (AUTONOMICS_* environment) -------------------------

variable "env" {
  description = "The deployment's environment (AUTONOMICS_ENV, every component): \"prod\" in production, where test clocks are refused; another lower-case name (dev, staging) turns them on (shared/platform TestClock) and gives the console what they need (console.tf)."
  type        = string
  default     = "prod"

  validation {
    # shared/platform accepts these, and refuses other spellings of
    # production rather than taking them for a non-production stack.
    condition     = can(regex("^[a-z][a-z0-9-]{0,31}$", var.env)) && var.env != "production"
    error_message = "env is \"prod\" in production, or another lower-case name of up to 32 letters, digits and dashes (dev, staging)."
  }
}

variable "ledger_origin" {
  description = "Origin of the ledger's checkpoints, which is the signing key's name (AUTONOMICS_LEDGER_ORIGIN). Empty means <project>/<prefix>autonomics-ledger. Cloud Build names the key it generates the same way."
  type        = string
  default     = ""
}

variable "provider_tenant" {
  description = "Tenant whose product catalog holds the plans and prices (AUTONOMICS_PROVIDER_TENANT). Empty means each tenant's own catalog."
  type        = string
  default     = ""
}

variable "timers" {
  description = "Timer durations overriding the defaults, keyed domain.timer, e.g. { \"subscription.trial_end\" = \"336h\" } (AUTONOMICS_TIMERS)."
  type        = map(string)
  default     = {}
}

variable "dedup_ttl" {
  description = "How long a processed event's dedup marker is kept before the TTL policy deletes it (AUTONOMICS_DEDUP_TTL); longer than Pub/Sub's 7 days of retention."
  type        = string
  default     = "720h"
}

variable "log_level" {
  description = "Log level of every component: debug, info, warn or error (AUTONOMICS_LOG_LEVEL)."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "The log level is debug, info, warn or error."
  }
}

variable "telemetry" {
  description = "Telemetry exporter (AUTONOMICS_TELEMETRY): gcp sends traces and metrics with OTLP to Google's Telemetry API, otlp to the collector the OTEL_EXPORTER_OTLP_* variables name, none records nothing."
  type        = string
  default     = "gcp"

  validation {
    condition     = contains(["none", "gcp", "otlp", "stdout"], var.telemetry)
    error_message = "The telemetry exporter is none, gcp, otlp or stdout."
  }
}

variable "trace_sample_ratio" {
  description = "Share of root traces recorded, in (0, 1] (AUTONOMICS_TRACE_SAMPLE_RATIO)."
  type        = number
  default     = 1
}

variable "extra_env" {
  description = "Additional environment variables per component (governor, scheduler, query, monitor, integrator, actuator, ingest, marketplace, signup, console), merged over the common ones."
  type        = map(map(string))
  default     = {}
}

# --- Functions ---------------------------------------------------------------

variable "governor_function" {
  description = <<-EOT
    Sizing of the eight governor functions and delivery policy of their push subscriptions.

    concurrency (max_instance_request_concurrency) is 8 by default, on purpose: a request is
    one Firestore transaction plus a few publishes, so it mostly waits on the network, and
    one vCPU serves several at once, which cuts cold starts and cost. It is not higher
    because every in-flight request holds a transaction open against Firestore, and tail
    latency under bursts grows with the queue inside one instance. Ordered delivery already
    keeps a tenant's events one at a time, so concurrent requests belong to different
    tenants and do not contend. Concurrency above 1 needs cpu >= 1.
  EOT
  type = object({
    memory                = optional(string, "512Mi")
    cpu                   = optional(string, "1")
    concurrency           = optional(number, 8)
    min_instances         = optional(number, 0)
    max_instances         = optional(number, 10)
    timeout_seconds       = optional(number, 60)
    max_delivery_attempts = optional(number, 10)
    minimum_backoff       = optional(string, "10s")
    maximum_backoff       = optional(string, "600s")
  })
  default = {}

  validation {
    condition     = var.governor_function.concurrency == 1 || tonumber(var.governor_function.cpu) >= 1
    error_message = "Concurrency above 1 needs at least one vCPU."
  }

  validation {
    condition     = var.governor_function.max_delivery_attempts >= 5 && var.governor_function.max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts 5 to 100 delivery attempts."
  }

  validation {
    condition     = var.governor_function.timeout_seconds >= 10 && var.governor_function.timeout_seconds <= 600
    error_message = "The timeout is also the subscription's ack deadline: 10 to 600 seconds."
  }
}

variable "message_ordering" {
  description = "Deliver each tenant's events to a governor one at a time in publish order (the ordering key is the tenant id)."
  type        = bool
  default     = true
}

variable "scheduler_function" {
  description = "Sizing of the Tick and Sweep functions. Each call handles a batch; one instance and one request at a time keep two runs from racing over the same timers and outbox entries."
  type = object({
    memory          = optional(string, "256Mi")
    cpu             = optional(string, "0.167")
    timeout_seconds = optional(number, 120)
  })
  default = {}
}

variable "schedules" {
  description = "Cron schedules (UTC) of the Cloud Scheduler jobs."
  type = object({
    tick      = optional(string, "* * * * *")
    sweep     = optional(string, "* * * * *")
    evaluate  = optional(string, "* * * * *")
    integrate = optional(string, "*/5 * * * *")
  })
  default = {}
}

# --- Producers -----------------------------------------------------------------

variable "producers" {
  description = <<-EOT
    IAM members of the systems outside Autonomics that publish governor events (the Marketplace
    adapter, billing and usage meters, operators' tools), e.g. ["serviceAccount:billing-meter@P.iam.gserviceaccount.com"].
    Each gets roles/pubsub.publisher on the eight domain topics and nothing else: internal topics
    (cascades, timeouts, fairness events), receipts, actions, alerts, checkpoints and dead-letter
    stay Autonomics' own. Never allUsers.
  EOT
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.producers : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "Producers are named identities; the domain topics are not public."
  }
}

# --- Cloud Run services --------------------------------------------------------

variable "services" {
  description = "Sizing of the Cloud Run services query, monitor and integrator; what is not given keeps the defaults (512Mi, 1 vCPU, 80 concurrent requests; instances: query 0-3, monitor 0-3; the integrator 1-2 instances of 1,000 concurrent requests)."
  type = map(object({
    memory        = optional(string)
    cpu           = optional(string)
    concurrency   = optional(number)
    min_instances = optional(number)
    max_instances = optional(number)
  }))
  default = {}
}

variable "query_invokers" {
  description = "IAM members allowed to call the query API, e.g. [\"group:operators@example.com\"]. Never allUsers."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.query_invokers : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "The query API is not public."
  }
}

variable "monitor_invokers" {
  description = "IAM members allowed to call the monitor API (policies, metrics, alerts, silences). Never allUsers."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.monitor_invokers : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "The monitor API is not public."
  }
}

# --- Alerting ------------------------------------------------------------------

variable "alert_emails" {
  description = "Email addresses notified by the Cloud Monitoring alert policies."
  type        = list(string)
  default     = []
}

variable "oldest_unacked_alert_seconds" {
  description = "Age of the oldest unacknowledged message on a governor or monitor subscription that raises an alert."
  type        = number
  default     = 600
}

variable "function_error_ratio" {
  description = "Share of 5xx responses of the functions over 5 minutes that raises an alert."
  type        = number
  default     = 0.05
}
