terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.0"
    }
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 7.0"
    }
  }

  # Remote state in a GCS bucket the user provides:
  #   terraform init -backend-config=bucket=BUCKET -backend-config=prefix=autonomics/prod
  backend "gcs" {}
}

provider "google" {
  project = var.project
  region  = var.region

  default_labels = var.labels
}

# Only for google_project_service_identity, which mints the Pub/Sub service
# agent before IAM grants name it.
provider "google-beta" {
  project = var.project
  region  = var.region
}
