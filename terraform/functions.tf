# The ten Cloud Functions (2nd gen), all built from one staged source
# archive (`make stage`): the eight governors, each fed by the push
# subscriptions of its domain topic and of its internal topic, and Tick and
# Sweep, called by Cloud Scheduler.

resource "google_storage_bucket" "source" {
  name                        = "${var.project}-${var.prefix}autonomics-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Archives are rebuilt from the repository at will.
  force_destroy = true

  depends_on = [google_project_service.enabled]
}

# The object name carries the archive's SHA-256: changed code is a new
# object, and a new object redeploys every function.
resource "google_storage_bucket_object" "source" {
  name   = "source-${filesha256(var.source_archive)}.zip"
  bucket = google_storage_bucket.source.name
  source = var.source_archive

  # The previous archive goes only once the functions have moved on.
  lifecycle {
    create_before_destroy = true
  }
}

locals {
  # The governors and the scheduler read the ledger: a receipt it holds
  # witnesses the delivery of its decision.
  decider_env  = merge(local.platform_env, { AUTONOMICS_LEDGER_DATABASE = local.ledger_database })
  governor_env = merge(local.decider_env, local.go_runtime_env["governor"], lookup(var.extra_env, "governor", {}))
}

module "governor" {
  source   = "./modules/governor_function"
  for_each = local.governors

  name        = "${var.prefix}autonomics-${replace(each.key, "_", "-")}"
  description = "Autonomics ${each.key} governor."
  region      = var.region
  runtime     = var.function_runtime
  entry_point = each.value.entry_point
  labels      = { component = "governor", domain = each.key }

  source_bucket         = google_storage_bucket.source.name
  source_object         = google_storage_bucket_object.source.name
  build_service_account = google_service_account.builder.id
  service_account_email = google_service_account.governor[each.key].email
  environment           = local.governor_env
  settings              = var.governor_function

  topics = {
    domain   = { id = google_pubsub_topic.topic[each.key].id, name = google_pubsub_topic.topic[each.key].name }
    internal = { id = google_pubsub_topic.topic["${each.key}_internal"].id, name = google_pubsub_topic.topic["${each.key}_internal"].name }
  }
  message_ordering           = var.message_ordering
  dead_letter_topic          = google_pubsub_topic.topic["dead_letter"].id
  push_service_account_email = google_service_account.push.email
  pubsub_service_agent       = local.pubsub_agent

  depends_on = [
    google_project_iam_member.grant,
    google_pubsub_topic_iam_member.publisher,
    google_pubsub_topic_iam_member.dead_letter_forwarding,
    google_service_account_iam_member.push_token_creator,
  ]
}

resource "google_cloudfunctions2_function" "scheduler" {
  for_each = local.scheduler_functions

  name        = "${var.prefix}autonomics-${each.key}"
  location    = var.region
  description = each.value.description
  labels      = { component = "scheduler" }

  build_config {
    runtime         = var.function_runtime
    entry_point     = each.value.entry_point
    service_account = google_service_account.builder.id

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    available_memory = var.scheduler_function.memory
    available_cpu    = var.scheduler_function.cpu
    timeout_seconds  = var.scheduler_function.timeout_seconds

    # One run at a time: a call processes a whole batch (due timers, or
    # outbox entries older than a minute), and a second concurrent run
    # would only race the first over the same documents.
    min_instance_count               = 0
    max_instance_count               = 1
    max_instance_request_concurrency = 1

    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.scheduler.email
    environment_variables          = merge(local.decider_env, local.go_runtime_env["scheduler"], lookup(var.extra_env, "scheduler", {}))
  }

  depends_on = [
    google_project_iam_member.grant,
    google_pubsub_topic_iam_member.publisher,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "scheduler_function_invoker" {
  for_each = google_cloudfunctions2_function.scheduler

  location = each.value.location
  name     = each.value.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler_invoker.email}"
}

resource "google_cloud_scheduler_job" "scheduler_function" {
  for_each = local.scheduler_functions

  name             = "${var.prefix}autonomics-${each.key}"
  description      = each.value.description
  region           = var.region
  schedule         = var.schedules[each.key]
  time_zone        = "Etc/UTC"
  attempt_deadline = "${var.scheduler_function.timeout_seconds}s"

  # A failed run is not retried: the next minute's run does the same work.
  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.scheduler[each.key].service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.scheduler_invoker.email
      audience              = google_cloudfunctions2_function.scheduler[each.key].service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.scheduler_function_invoker]
}
