#!/usr/bin/env bash
# CI job for a Terraform configuration that uses livehook: fail on errors, report drift.
# Credentials come from the pipeline's secret store as environment variables:
#   HW_REGION_NAME HW_PROJECT_ID HW_ACCESS_KEY HW_SECRET_KEY [HW_SECURITY_TOKEN]
set -euo pipefail
export TF_IN_AUTOMATION=1 TF_INPUT=0

terraform init -input=false
terraform validate

# -detailed-exitcode: 0 = no changes, 1 = error, 2 = changes (drift or pending edits).
set +e
terraform plan -input=false -lock-timeout=5m -detailed-exitcode -out=tfplan
code=$?
set -e
case "$code" in
  0) echo "no drift: live notification configs match the code" ;;
  2) echo "drift or pending changes: review the plan below"; terraform show -no-color tfplan; exit 2 ;;
  *) echo "terraform plan failed"; exit 1 ;;
esac
