# The livehook provider from its mirror (README, Install); the Kubernetes provider 2.36 or
# later has the write-only data_wo of kubernetes_secret_v1. Both are configured from the
# environment here (HW_*, KUBE_CONFIG_PATH).
terraform {
  required_version = ">= 1.11"
  required_providers {
    livehook = {
      source = "livehook/livehook"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.36"
    }
  }
}
