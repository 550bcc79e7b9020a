# Not part of the rendered documentation: makes this directory usable on its own
# (terraform init/plan/apply), with the provider configured from the environment
# (HW_ACCESS_KEY, HW_SECRET_KEY, HW_PROJECT_ID, HW_REGION_NAME or LIVEHOOK_ENDPOINT).
# Ephemeral resources need Terraform 1.10, write-only arguments 1.11.
terraform {
  required_version = ">= 1.11"
  required_providers {
    livehook = {
      source = "livehook/livehook"
    }
  }
}
