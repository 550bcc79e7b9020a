# Not part of the rendered documentation: makes this directory usable on its own. The
# function needs no credentials, so there is no provider block.
terraform {
  required_version = ">= 1.8" # provider-defined functions
  required_providers {
    livehook = {
      source = "livehook/livehook"
    }
  }
}
