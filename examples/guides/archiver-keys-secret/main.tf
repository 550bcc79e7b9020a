# Terraform sets the callback key on Live and writes the archiver's keys Secret, and the key
# never touches the plan or the state.

variable "callback_key" {
  description = "Key (32 to 128 characters) Live signs the callbacks with, e.g. from the pipeline's secret store."
  type        = string
  sensitive   = true
  ephemeral   = true # never stored in a plan file or the state
}

variable "callback_key_version" {
  description = "Bump to send a new callback_key to Live and to the archiver's Secret."
  type        = number
}

# 1. The key goes to Live through the write-only argument.
resource "livehook_publish_notification" "push" {
  domain                   = "push.example.com"
  url                      = "https://archiver.example.com/live/callback"
  auth_sign_key_wo         = var.callback_key
  auth_sign_key_wo_version = var.callback_key_version
}

# 2. The ephemeral resource reads back the key Live now signs with. Its domain refers to id,
#    which is known only once the notification exists, so on the first apply Terraform opens
#    it after the create instead of during the plan (when there is nothing to read yet).
ephemeral "livehook_publish_notification" "push" {
  domain = livehook_publish_notification.push.id
}

# 3. The archiver's --keys file (keys.json: {"push.example.com": "<key>"}) in the Secret that
#    examples/archiver/kubernetes/deployment.yaml mounts, through the write-only data_wo. It is
#    written when data_wo_revision changes, so it follows the key's version.
resource "kubernetes_secret_v1" "archiver_keys" {
  metadata {
    name      = "livehook-archiver-keys"
    namespace = "livehook"
  }
  type = "Opaque"
  data_wo = {
    "keys.json" = jsonencode({
      (livehook_publish_notification.push.domain) = ephemeral.livehook_publish_notification.push.auth_sign_key
    })
  }
  data_wo_revision = var.callback_key_version
}
