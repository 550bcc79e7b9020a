terraform {
  required_providers {
    livehook = {
      source = "livehook/livehook"
    }
  }
}

# Credentials come from the environment (HW_ACCESS_KEY, HW_SECRET_KEY and, for
# temporary credentials, HW_SECURITY_TOKEN) so that no secret is written here.
provider "livehook" {
  region     = "cn-north-4"
  project_id = "0123456789abcdef0123456789abcdef" # or HW_PROJECT_ID

  # Optional tuning of the shared Live API client.
  max_retries         = 6 # retries of 429, 5xx and connection errors
  requests_per_second = 5 # client-side limit shared by all resources
}

# Against the livehook emulator (or a private deployment), set the endpoint instead of
# the region, e.g. LIVEHOOK_ENDPOINT=http://127.0.0.1:8790.
