output "domain" {
  description = "Push domain whose publish notification is managed."
  value       = livehook_publish_notification.archive.domain
}

output "callback_url" {
  description = "Where Live now sends PUBLISH and PUBLISH_DONE callbacks."
  value       = livehook_publish_notification.archive.url
}

output "call_back_area" {
  description = "Where the callbacks are sent from."
  value       = livehook_publish_notification.archive.call_back_area
}

output "archiver_forward" {
  description = "The archiver's --forward value that keeps the business server receiving every callback (Live sends to one URL: the archiver)."
  value       = var.business_url == "" ? null : "business=${var.business_url}"
}
