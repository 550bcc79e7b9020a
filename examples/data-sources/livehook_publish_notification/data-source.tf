# Read the publish notification of a push domain, e.g. one managed elsewhere.
data "livehook_publish_notification" "push" {
  domain = "push.example.com"
}

output "callback_url" {
  value = data.livehook_publish_notification.push.url
}

output "callbacks_signed" {
  value = data.livehook_publish_notification.push.auth_sign_key_set
}
