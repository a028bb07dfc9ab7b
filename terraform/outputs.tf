output "function_urls" {
  description = "URL of each function's Cloud Run service, by domain (governors) or job (tick, sweep)."
  value = merge(
    { for d, m in module.governor : d => m.uri },
    { for k, f in google_cloudfunctions2_function.scheduler : k => f.service_config[0].uri },
  )
}

output "function_entry_points" {
  description = "Entry point of each function."
  value = merge(
    { for d, g in local.governors : d => g.entry_point },
    { for k, f in local.scheduler_functions : k => f.entry_point },
  )
}

output "service_urls" {
  description = "URL of each Cloud Run service."
  value       = { for s, svc in google_cloud_run_v2_service.service : s => svc.uri }
}

output "topics" {
  description = "Topic ids by role: the eight domain topics (by domain), the eight internal topics (<domain>_internal), receipts, actions, alerts, dead_letter, checkpoints."
  value       = { for k, t in google_pubsub_topic.topic : k => t.name }
}

output "subscriptions" {
  description = "Push subscriptions of the governors on their domain topics (by domain) and internal topics (<domain>_internal), of the receipt consumers (receipts_monitor, receipts_integrator), and the dead-letter inspection subscription."
  value = merge(
    { for d, m in module.governor : d => m.subscriptions.domain },
    { for d, m in module.governor : "${d}_internal" => m.subscriptions.internal },
    { for c, s in google_pubsub_subscription.receipts : "receipts_${c}" => s.name },
    { dead_letter = google_pubsub_subscription.dead_letter.name },
  )
}

output "source_object" {
  description = "The staged source archive the functions run."
  value       = "gs://${google_storage_bucket.source.name}/${google_storage_bucket_object.source.name}"
}

output "image_repository" {
  description = "Artifact Registry path the service images are pushed to."
  value       = local.image_repository
}

output "ledger_origin" {
  description = "Origin of the ledger's checkpoints, the signing key's name."
  value       = local.ledger_origin
}

output "signing_key_secret" {
  description = "Secret Manager secret holding the checkpoint signing key."
  value       = google_secret_manager_secret.signing_key.id
}

output "service_accounts" {
  description = "Email of each component's service account."
  value = merge(
    { for d, sa in google_service_account.governor : "governor-${d}" => sa.email },
    { for s, sa in google_service_account.service : s => sa.email },
    {
      scheduler         = google_service_account.scheduler.email
      pubsub_push       = google_service_account.push.email
      scheduler_invoker = google_service_account.scheduler_invoker.email
      builder           = google_service_account.builder.email
    },
  )
}

output "firestore_database" {
  description = "Firestore database id of governor state and receipts."
  value       = google_firestore_database.main.name
}

output "firestore_databases" {
  description = "Firestore database ids by role: main (governor state and receipts), ledger, monitor."
  value       = local.firestore_databases
}
