variable "name" {
  description = "Name of the function and of its Cloud Run service, e.g. autonomics-billing."
  type        = string
}

variable "description" {
  description = "Description of the function."
  type        = string
  default     = ""
}

variable "region" {
  description = "Region of the function."
  type        = string
}

variable "runtime" {
  description = "Cloud Functions runtime, e.g. go126; at or above the go line of go.mod."
  type        = string
}

variable "entry_point" {
  description = "Name the function package registers with the Functions Framework (its EntryPoint constant)."
  type        = string
}

variable "source_bucket" {
  description = "Bucket holding the staged source archive."
  type        = string
}

variable "source_object" {
  description = "Object name of the staged source archive, source-<sha256>.zip."
  type        = string
}

variable "build_service_account" {
  description = "Resource name (projects/P/serviceAccounts/EMAIL) of the account Cloud Build uses to build the function."
  type        = string
}

variable "service_account_email" {
  description = "Runtime identity of the function."
  type        = string
}

variable "environment" {
  description = "Environment variables of the function."
  type        = map(string)
}

variable "settings" {
  description = "Sizing of the function and delivery policy of its subscription."
  type = object({
    memory                = string
    cpu                   = string
    concurrency           = number
    min_instances         = number
    max_instances         = number
    timeout_seconds       = number
    max_delivery_attempts = number
    minimum_backoff       = string
    maximum_backoff       = string
  })
}

variable "topics" {
  description = "Topics the function consumes, by role: domain (where producers outside Autonomics publish) and internal (where only Autonomics publishes). Each has its id (projects/P/topics/T) and name; its push subscription is named <name>-push."
  type = map(object({
    id   = string
    name = string
  }))

  validation {
    condition     = length(var.topics) == 2 && alltrue([for k in keys(var.topics) : contains(["domain", "internal"], k)])
    error_message = "A governor consumes exactly its domain topic and its internal topic."
  }
}

variable "message_ordering" {
  description = "Deliver messages with the same ordering key (the tenant id) one at a time, in publish order."
  type        = bool
}

variable "dead_letter_topic" {
  description = "Id of the topic that receives messages after max_delivery_attempts failed deliveries."
  type        = string
}

variable "push_service_account_email" {
  description = "Identity whose OIDC token authenticates the push deliveries; it is granted run.invoker on the function."
  type        = string
}

variable "pubsub_service_agent" {
  description = "IAM member of the Pub/Sub service agent, which must be able to acknowledge messages it dead-letters."
  type        = string
}

variable "labels" {
  description = "Labels of the function and the subscription."
  type        = map(string)
  default     = {}
}
