# Production: no name prefix, so the project's (default) Firestore database
# (where the free tier applies), point-in-time recovery, and protection
# against an accidental destroy.

# Production: test clocks are refused everywhere.
env = "prod"

firestore_point_in_time_recovery = true
deletion_protection              = true
log_level                        = "info"
telemetry                        = "gcp"
trace_sample_ratio               = 0.1
labels                           = { environment = "prod", system = "autonomics" }

governor_function = {
  concurrency   = 8
  max_instances = 20
}

services = {
  query = { max_instances = 5 }
}

oldest_unacked_alert_seconds = 600
function_error_ratio         = 0.05

# Systems outside Autonomics that publish governor events (IAM members, e.g.
# the Marketplace adapter's and the usage meters' service accounts); each
# may publish to the eight domain topics only, never to an internal topic,
# receipts, actions or dead-letter. Add them here as they are deployed.
producers = []

# Selling on Google Cloud Marketplace (marketplace.tf; README "Selling on
# Google Cloud Marketplace"): off until the product exists in Producer
# Portal, since the values come from there and the subscription on the
# Marketplace topic cannot be created before. Then set
#   marketplace = {
#     enabled         = true
#     provider_id     = "<partner id>"
#     partner_topic   = "projects/cloudcommerceproc-prod/topics/<topic your Partner Engineer created>"
#     service_name    = "<Service domain of the Billing integration>"  # usage-priced plans
#     signup_audience = "<your domain>"
#     usage_metrics   = { <quota metric> = "<service domain>/<metric>" }
#   }
marketplace = {
  enabled = false
}

# Who may use the operator console (console.tf), e.g.
# ["group:operators@example.com"]; never allUsers.
console_invokers = []
