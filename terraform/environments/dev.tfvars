# A development environment, usually sharing a project with production
# under a name prefix given with the variables of the deployment (Cloud
# Build's _PREFIX, `make deploy ENV=dev PREFIX=dev-`); the data then lives
# in a Firestore database of its own, <prefix>-autonomics.

# Not production: test clocks are on (POST /api/v1/tenants/{t}/clock:advance
# on the console, `autonomicsctl clock advance`).
env = "dev"

deletion_protection = false
log_level           = "debug"
telemetry           = "gcp"
labels              = { environment = "dev", system = "autonomics" }

# Short timers so that lifecycles can be watched end to end.
timers = {
  "customer_account.verification" = "10m"
  "entitlement.approval"          = "10m"
  "subscription.trial_end"        = "15m"
  "subscription.period_end"       = "30m"
  "subscription.grace"            = "10m"
  "subscription.suspension"       = "20m"
}
dedup_ttl = "192h"

governor_function = {
  max_instances = 3
}

services = {
  query      = { max_instances = 1 }
  integrator = { max_instances = 1 }
}

schedules = {
  integrate = "*/10 * * * *"
}

oldest_unacked_alert_seconds = 1800

# Systems outside Autonomics that publish governor events to this
# environment (IAM members, e.g. the account of a test driver); each may
# publish to the eight domain topics only, never to an internal topic,
# receipts, actions or dead-letter. Add them here.
producers = []

# Selling on Google Cloud Marketplace (marketplace.tf; README "Selling on
# Google Cloud Marketplace"). Example values: replace them with those of
# Producer Portal before deploying (the partner id, the topic your Partner
# Engineer created, the Service domain of the Billing integration, the
# domain the sign-up JWTs are issued for), and link the accounts as the
# README says, or the subscription on the Marketplace topic cannot be
# created.
marketplace = {
  enabled         = true
  provider_id     = "example-provider"
  partner_topic   = "projects/cloudcommerceproc-prod/topics/example-provider"
  service_name    = "example-product.endpoints.example-project.cloud.goog"
  signup_audience = "autonomics.example.com"
  usage_metrics = {
    api_calls = "example-product.endpoints.example-project.cloud.goog/api_calls"
  }
  # Reconcile every hour in development, so that drift shows soon.
  reconcile_schedule = "0 * * * *"
}

# Who may use the operator console (console.tf), e.g.
# ["group:autonomics-dev@example.com"]; the URL is `terraform output -json
# console | jq -r .url`.
console_invokers = []
