output "function_name" {
  description = "Name of the function (and of its Cloud Run service)."
  value       = google_cloudfunctions2_function.this.name
}

output "uri" {
  description = "URL of the function's Cloud Run service, the push endpoint."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "entry_point" {
  description = "Entry point the function runs."
  value       = google_cloudfunctions2_function.this.build_config[0].entry_point
}

output "subscriptions" {
  description = "Names of the push subscriptions by role: domain and internal."
  value       = { for k, s in google_pubsub_subscription.push : k => s.name }
}
