variable "domain" {
  description = "Push (ingest) domain whose PUBLISH / PUBLISH_DONE callbacks are archived."
  type        = string
}

variable "archiver_url" {
  description = "Base URL of the livehook archiver (http:// or https://, no trailing slash); callbacks go to <archiver_url>/callback."
  type        = string

  validation {
    condition     = can(regex("^https?://[^/]+", var.archiver_url)) && !endswith(var.archiver_url, "/")
    error_message = "archiver_url must start with http:// or https:// and have no trailing slash, e.g. https://archiver.example.com."
  }
}

variable "business_url" {
  description = "URL of the business server that received these callbacks before the archiver took the notification URL; the archiver forwards every callback to it (archiver serve --forward business=URL). Empty: no forwarding."
  type        = string
  default     = ""

  validation {
    condition     = var.business_url == "" || can(regex("^https?://[^/]+", var.business_url))
    error_message = "business_url must be empty or start with http:// or https://."
  }
}

variable "notify_key" {
  description = "Key (32 to 128 characters) Live signs each callback with; the archiver's --keys file holds the same key for this domain."
  type        = string
  sensitive   = true
  ephemeral   = true # never written to the plan or the state (Terraform 1.10+)

  validation {
    condition     = length(var.notify_key) >= 32 && length(var.notify_key) <= 128
    error_message = "notify_key must be 32 to 128 characters long."
  }
}

variable "notify_key_version" {
  description = "Increment to send a new notify_key to Live (write-only keys are only sent when this changes)."
  type        = number
  default     = 1
}

variable "call_back_area" {
  description = "Where Live sends callbacks from: mainland_china or outside_mainland_china."
  type        = string
  default     = "outside_mainland_china"
}
