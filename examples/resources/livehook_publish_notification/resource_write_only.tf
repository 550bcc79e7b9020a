# Terraform 1.11 and later: keep the key out of the plan and the state with the
# write-only argument. The key is sent when the resource is created and again each
# time auth_sign_key_wo_version changes, so bump the version to rotate the key.
variable "callback_key_wo" {
  description = "Key (32 to 128 characters) Live signs the callbacks with; never stored."
  type        = string
  sensitive   = true
  ephemeral   = true
}

resource "livehook_publish_notification" "signed" {
  domain                   = "live.example.com"
  url                      = "https://hooks.example.com/live/callbacks"
  auth_sign_key_wo         = var.callback_key_wo
  auth_sign_key_wo_version = 1
}
