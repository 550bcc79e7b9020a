# The auth_sign of the spec's worked example (docs: spec/callback.md):
# fa5addca9ea94589d2a7f936a82e2ef3af10bf7ffc665e278c05214537e2ed41
output "publish_signature" {
  value = provider::livehook::callback_signature(
    "0123456789abcdef0123456789abcdef", # the domain's auth_sign_key
    "PUBLISH",                          # or PUBLISH_DONE
    "push.example.com",                 # domain
    "live",                             # app
    "example_stream",                   # stream
    1587954140,                         # auth_timestamp (unix seconds)
  )
}

# In a check block: does a receiver accept what Live would send?
variable "notify_key" {
  type      = string
  sensitive = true
  default   = "0123456789abcdef0123456789abcdef"
}

check "signature_matches_receiver_fixture" {
  assert {
    condition = provider::livehook::callback_signature(
      var.notify_key, "PUBLISH_DONE", "push.example.com", "live", "example_stream", 1587954140
    ) == "fe71cd27e6df78034898faef20237ead1f13540de1b340b7644e8444c5024308"
    error_message = "callback_signature no longer matches the receiver's signed PUBLISH_DONE fixture."
  }
}
