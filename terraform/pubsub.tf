# Topics (shared/topic): per governor domain a domain topic (producers
# outside Autonomics publish there) and an internal topic (only Autonomics
# publishes there); receipts, actions, alerts, checkpoints and dead-letter.
# Consumers outside Autonomics (actuators, notification relays) attach
# their own subscriptions to actions and alerts.

resource "google_pubsub_topic" "topic" {
  for_each = local.topics

  name = each.value

  depends_on = [google_project_service.enabled]
}

# Dead-lettered messages stay here for inspection and replay; a topic
# without a subscription would drop them.
resource "google_pubsub_subscription" "dead_letter" {
  name                       = "${local.topics.dead_letter}-inspect"
  topic                      = google_pubsub_topic.topic["dead_letter"].id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

# The Pub/Sub service agent publishes what a subscription dead-letters. It
# also needs subscriber on each source subscription (granted next to it).
resource "google_pubsub_topic_iam_member" "dead_letter_forwarding" {
  topic  = google_pubsub_topic.topic["dead_letter"].name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

# OIDC tokens of push subscriptions are minted by the Pub/Sub service
# agent acting as the push identity. Projects created before April 2021
# need this grant; it is scoped to that one account.
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# External producers (var.producers) publish events to the eight domain
# topics and nowhere else: never to an internal topic (cascades, timeouts,
# fairness events, which only Autonomics sends), nor to receipts, actions,
# alerts, checkpoints or dead-letter.
resource "google_pubsub_topic_iam_member" "producer" {
  for_each = {
    for pair in setproduct(keys(local.domain_topics), var.producers) : "${pair[0]}/${pair[1]}" => {
      topic = pair[0], member = pair[1]
    }
  }

  topic  = google_pubsub_topic.topic[each.value.topic].name
  role   = "roles/pubsub.publisher"
  member = each.value.member
}
