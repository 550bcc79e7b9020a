# Read the publish notification of push.example.com, key included, without storing
# anything in the plan or the state.
ephemeral "livehook_publish_notification" "push" {
  domain = "push.example.com"
}

# Hand the key on to a write-only argument: here a second push domain that must sign its
# callbacks with the same key. (The archiver's keys Secret is the usual consumer: see the
# guide "Handing the callback key to the archiver without the state".)
resource "livehook_publish_notification" "backup" {
  domain                   = "backup.example.com"
  url                      = "https://hooks.example.com/live/callbacks"
  auth_sign_key_wo         = ephemeral.livehook_publish_notification.push.auth_sign_key
  auth_sign_key_wo_version = 1 # bump to copy the key again
}
