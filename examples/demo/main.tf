# livehook demo: point one push domain's publish notification at a livehook archiver.
#
# The provider reads its credentials and endpoint from the environment, so nothing secret is
# in this file:
#   HW_REGION_NAME, HW_PROJECT_ID, HW_ACCESS_KEY, HW_SECRET_KEY
#   LIVEHOOK_ENDPOINT  (optional: another Live API base URL, e.g. the livehook emulator)
#
#   terraform apply -var domain=push.example.com \
#     -var archiver_url=https://archiver.example.com -var notify_key=... \
#     -var business_url=https://biz.example.com/live/callback
#
# Live sends a domain's callbacks to one URL: the archiver. The business server that received
# them before keeps receiving every one through the archiver's relay
# (archiver serve --forward business=URL, see the archiver_forward output).
terraform {
  required_version = ">= 1.11" # auth_sign_key_wo is a write-only argument

  required_providers {
    livehook = {
      source = "livehook/livehook"
    }
  }
}

provider "livehook" {
  # All settings from the environment (see above). Stay under the Live API's quota:
  requests_per_second = 5
}

resource "livehook_publish_notification" "archive" {
  domain = var.domain
  url    = "${var.archiver_url}/callback"

  # Write-only: the key is sent to Live but never stored in the plan or the state.
  # Bump the version to send a new key.
  auth_sign_key_wo         = var.notify_key
  auth_sign_key_wo_version = var.notify_key_version

  call_back_area = var.call_back_area
}
