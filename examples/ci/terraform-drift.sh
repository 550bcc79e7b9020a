#!/usr/bin/env bash
# Drift check for a Terraform configuration that uses livehook; run it in the configuration's
# directory (nightly, or on demand). It tells two things apart:
#   - drift: the live notification configs changed outside Terraform (console, API, a script),
#     found by `terraform plan -refresh-only -detailed-exitcode`;
#   - pending changes: the code differs from what is applied (an edit not yet applied),
#     found by a normal `terraform plan -detailed-exitcode` once there is no drift.
#
# Exit status and the last line printed:
#   0  "no drift: ..."          live configs, state and code all agree
#   2  "drift: ..."             changed outside Terraform; the refresh-only plan is shown. Decide:
#                               `terraform apply -refresh-only` to accept it, or `terraform apply`
#                               to put the code's values back
#   3  "pending changes: ..."   no drift, but the code has edits not applied yet; the plan is
#                               shown and saved as ./tfplan
#   1  "error: ..."             init, validate or a plan failed (credentials, network, syntax)
#
# Credentials come from the pipeline's secret store as environment variables:
#   HW_REGION_NAME HW_PROJECT_ID HW_ACCESS_KEY HW_SECRET_KEY [HW_SECURITY_TOKEN]
# The provider comes from the team's mirror (TF_CLI_CONFIG_FILE, see terraformrc) and must match
# the committed .terraform.lock.hcl.
set -uo pipefail
export TF_IN_AUTOMATION=1 TF_INPUT=0

log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail() { cat "$log" >&2; echo "error: $*" >&2; exit 1; }

terraform init -input=false -lockfile=readonly -no-color >"$log" 2>&1 ||
  fail "terraform init failed: check the provider mirror in TF_CLI_CONFIG_FILE and the committed .terraform.lock.hcl"
terraform validate -no-color >"$log" 2>&1 || fail "terraform validate failed"

# -detailed-exitcode's 2 means "the plan would change the state". Terraform also says so when a
# refresh only re-encodes the state ("No changes."), so the plan's JSON decides what changed.
planned() {
  local json
  json=$(terraform show -json "$1" 2>/dev/null) && grep -Eq "$2" <<<"$json"
}

terraform plan -refresh-only -detailed-exitcode -input=false -lock-timeout=5m -no-color -out=drift.tfplan >"$log" 2>&1
code=$?
if [ "$code" = 2 ] && ! planned drift.tfplan '"resource_drift":\[\{'; then code=0; fi
case $code in
  0) ;;
  2)
    terraform show -no-color drift.tfplan
    echo "drift: live notification configs changed outside Terraform (see above); accept with 'terraform apply -refresh-only' or restore with 'terraform apply'"
    exit 2
    ;;
  *) fail "terraform plan -refresh-only failed" ;;
esac

terraform plan -detailed-exitcode -input=false -lock-timeout=5m -no-color -out=tfplan >"$log" 2>&1
code=$?
if [ "$code" = 2 ] && ! planned tfplan '"actions":\["(create|update|delete)'; then code=0; fi
case $code in
  0)
    echo "no drift: live notification configs match the state and the code"
    exit 0
    ;;
  2)
    terraform show -no-color tfplan
    echo "pending changes: the code has edits that are not applied yet (plan above, saved as tfplan)"
    exit 3
    ;;
  *) fail "terraform plan failed" ;;
esac
