# One governor: a 2nd gen Cloud Function built from the staged source archive
# with its own entry point, and the Pub/Sub push subscriptions that feed it
# (a direct Pub/Sub trigger, without Eventarc): one on its domain topic,
# where producers outside Autonomics publish, and one on its internal
# topic, where only Autonomics publishes. Each is named <topic>-push
# (topic.Push in shared/topic): the function tells an internal delivery by
# the subscription's full name, which Pub/Sub writes into the push body and
# no publisher can set.

resource "google_cloudfunctions2_function" "this" {
  name        = var.name
  location    = var.region
  description = var.description
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = var.entry_point
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = var.source_bucket
        object = var.source_object
      }
    }
  }

  service_config {
    available_memory = var.settings.memory
    available_cpu    = var.settings.cpu
    timeout_seconds  = var.settings.timeout_seconds

    min_instance_count = var.settings.min_instances
    max_instance_count = var.settings.max_instances
    # Concurrency is a deliberate setting (see the governor_function variable
    # of the root module): a request spends its time waiting on a Firestore
    # transaction and on publishes, so one instance serves several requests
    # of different tenants (ordering keeps a tenant's requests sequential)
    # while max_instance_count bounds the load on Firestore.
    max_instance_request_concurrency = var.settings.concurrency

    # Only Pub/Sub (same project) reaches the function; push requests also
    # carry an OIDC token checked by the run.invoker binding below.
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    service_account_email          = var.service_account_email
    environment_variables          = var.environment
  }
}

# The push identity may invoke this function and nothing else it is not
# granted elsewhere.
resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  location = google_cloudfunctions2_function.this.location
  name     = google_cloudfunctions2_function.this.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${var.push_service_account_email}"
}

resource "google_pubsub_subscription" "push" {
  for_each = var.topics

  name   = "${each.value.name}-push"
  topic  = each.value.id
  labels = var.labels

  # For a push subscription the ack deadline is how long Pub/Sub waits for
  # the function's response: the function's own timeout.
  ack_deadline_seconds       = var.settings.timeout_seconds
  message_retention_duration = "604800s"
  # Publishers set the ordering key to the tenant id. Pub/Sub supports
  # ordering together with a dead-letter policy; a dead-lettered message
  # lets the next message of its key through.
  enable_message_ordering = var.message_ordering

  push_config {
    push_endpoint = google_cloudfunctions2_function.this.service_config[0].uri

    oidc_token {
      service_account_email = var.push_service_account_email
      audience              = google_cloudfunctions2_function.this.service_config[0].uri
    }
  }

  # Transient failures (the function returns an error) are redelivered
  # with exponential backoff; permanent ones are acknowledged by the
  # function after it copies them to the dead-letter topic itself.
  retry_policy {
    minimum_backoff = var.settings.minimum_backoff
    maximum_backoff = var.settings.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = var.dead_letter_topic
    max_delivery_attempts = var.settings.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_v2_service_iam_member.push_invoker]
}

# Dead-lettering: the Pub/Sub service agent forwards a message to the
# dead-letter topic (publisher, granted on that topic by the root module)
# and acknowledges it here (subscriber on each subscription).
resource "google_pubsub_subscription_iam_member" "dead_letter_ack" {
  for_each = google_pubsub_subscription.push

  subscription = each.value.name
  role         = "roles/pubsub.subscriber"
  member       = var.pubsub_service_agent
}

# The subscription on the domain topic was this module's only one.
moved {
  from = google_pubsub_subscription.push
  to   = google_pubsub_subscription.push["domain"]
}

moved {
  from = google_pubsub_subscription_iam_member.dead_letter_ack
  to   = google_pubsub_subscription_iam_member.dead_letter_ack["domain"]
}
