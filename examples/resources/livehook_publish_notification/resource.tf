# Send PUBLISH / PUBLISH_DONE callbacks of the push domain push.example.com to an
# HTTPS endpoint, signed with a key that is kept in the (sensitive) state.
variable "callback_key" {
  description = "Key (32 to 128 characters) Live signs the callbacks with."
  type        = string
  sensitive   = true
}

resource "livehook_publish_notification" "push" {
  domain         = "push.example.com"
  url            = "https://hooks.example.com/live/callbacks"
  auth_sign_key  = var.callback_key
  call_back_area = "outside_mainland_china"

  timeouts {
    create = "10m"
  }
}
