package provider

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
)

// ModifyPlan says at plan time what would otherwise surprise the user later: a create that
// would take over a config made outside Terraform (an error, before anything is applied), and
// a write-only key that this plan will not send although Live does not have it (warnings).
// Terraform plans each resource again during apply, so these checks run there too.
func (r *publishNotificationResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	var plan publishNotificationModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if req.State.Raw.IsNull() {
		// Create, or the create half of a -replace, which Terraform plans with a null prior state
		// but the object's private state, naming the domain whose config on Live this resource
		// wrote (markManaged): only a real create looks for a takeover (Create's own check still
		// runs after the delete). A tainted object is planned with neither, so it is refused like
		// a takeover, with the untaint and -replace hint.
		if !managesConfig(ctx, req.Private, plan.Domain) {
			r.refuseTakeoverAtPlan(ctx, plan, &resp.Diagnostics)
		}
		return
	}
	var state publishNotificationModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// States written before the marker existed get it here, for a -replace planned from them.
	resp.Diagnostics.Append(markManaged(ctx, resp.Private, state.Domain.ValueString())...)
	var wo types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, path.Root("auth_sign_key_wo"), &wo)...)
	if resp.Diagnostics.HasError() {
		return
	}
	f, ok, d := loadFingerprint(ctx, req.Private)
	resp.Diagnostics.Append(d...)
	if !ok || !keyStaysAsIs(plan, state) {
		return // nothing to compare with, or the planned update sends the configured key anyway
	}
	domain := state.Domain.ValueString()
	version := state.AuthSignKeyWOVersion.ValueInt64()
	if !wo.IsNull() && !wo.IsUnknown() && !f.matches(domain, wo.ValueString()) {
		resp.Diagnostics.AddAttributeWarning(path.Root("auth_sign_key_wo_version"),
			"auth_sign_key_wo changed but auth_sign_key_wo_version did not",
			fmt.Sprintf("The auth_sign_key_wo of push domain %q is not the key Terraform last sent to Live, but "+
				"auth_sign_key_wo_version is still %d, so this apply does not send it: Live keeps signing callbacks with "+
				"the previous key. To send the new key, increment auth_sign_key_wo_version (for example to %d). If the "+
				"change is not intended, restore the previous key in auth_sign_key_wo's source.",
				domain, version, version+1))
	}
	if f.RemoteDiffers {
		resp.Diagnostics.AddAttributeWarning(path.Root("auth_sign_key_wo_version"),
			"Signing key of "+domain+" changed outside Terraform",
			fmt.Sprintf("The callback signing key of push domain %q on Live is no longer the key Terraform last sent "+
				"(auth_sign_key_wo): it was changed or removed outside Terraform, for example in the Live console. Live now "+
				"signs callbacks with a key your receivers (such as the archiver's --keys) may not know. The plan cannot "+
				"show the difference because the key is never stored in the state.\n\n"+
				"To send the configured key again, increment auth_sign_key_wo_version (for example from %d to %d) and "+
				"apply. To keep the key now on Live instead, put it in auth_sign_key_wo's source and increment the version "+
				"as well, so that Terraform records it.", domain, version, version+1))
	}
}

// refuseTakeoverAtPlan is the takeover check for a planned create: a GET, so that the plan
// fails with the import hint instead of the apply failing half-way. It is skipped while the
// provider or the domain is not known yet (the apply-time check in Create still runs).
func (r *publishNotificationResource) refuseTakeoverAtPlan(ctx context.Context, plan publishNotificationModel, diags *diag.Diagnostics) {
	if r.data == nil || plan.Domain.IsUnknown() || plan.Domain.IsNull() {
		return
	}
	// The look-up belongs to the create, so the create timeout bounds it.
	timeout, d := plan.Timeouts.Create(ctx, defaultTimeout)
	diags.Append(d...)
	if diags.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if domain := plan.Domain.ValueString(); r.refuseExisting(ctx, domain, timeout, diags) {
		r.data.noteAbsent(domain)
	}
}

// privateKeyManaged names, in private state, the domain whose config on Live this resource wrote:
// Terraform hands it to the plan of a replacement (taint, -replace), whose prior state is null.
const privateKeyManaged = "managed_domain"

// markManaged records that domain's config on Live belongs to this resource.
func markManaged(ctx context.Context, p privateStore, domain string) diag.Diagnostics {
	if p == nil {
		return nil
	}
	b, _ := json.Marshal(domain) // a string always encodes
	return p.SetKey(ctx, privateKeyManaged, b)
}

// managesConfig reports whether the private state says this resource wrote domain's config on
// Live (see markManaged): a plan with a null prior state is then a replacement, not a takeover.
func managesConfig(ctx context.Context, p privateStore, domain types.String) bool {
	if p == nil || domain.IsUnknown() || domain.IsNull() {
		return false
	}
	b, diags := p.GetKey(ctx, privateKeyManaged)
	var managed string
	return !diags.HasError() && len(b) > 0 && json.Unmarshal(b, &managed) == nil && managed == domain.ValueString()
}

// keyStaysAsIs reports whether the plan leaves the resource as it is, so no write (which would
// send the configured key) happens. With a write-only key the version must be set.
func keyStaysAsIs(plan, state publishNotificationModel) bool {
	return !plan.AuthSignKeyWOVersion.IsNull() &&
		plan.AuthSignKeyWOVersion.Equal(state.AuthSignKeyWOVersion) &&
		plan.Domain.Equal(state.Domain) &&
		plan.URL.Equal(state.URL) &&
		plan.CallBackArea.Equal(state.CallBackArea) &&
		plan.AuthSignKey.Equal(state.AuthSignKey) &&
		plan.Timeouts.Object.Equal(state.Timeouts.Object)
}

// recordSentKey keeps the fingerprint of the write-only key just sent (wo), or drops the
// fingerprint when the plain auth_sign_key (which the state holds anyway) or no key was sent.
func recordSentKey(ctx context.Context, private privateStore, domain string, wo types.String) diag.Diagnostics {
	if wo.IsNull() || wo.IsUnknown() {
		return storeFingerprint(ctx, private, nil)
	}
	f, err := newKeyFingerprint(domain, wo.ValueString())
	if err != nil {
		var d diag.Diagnostics
		d.AddWarning("Key changes outside Terraform will not be noticed",
			fmt.Sprintf("The key of %s was sent to Live, but its fingerprint could not be made (%v), so a later change of "+
				"the key outside Terraform cannot be reported. The next write tries again.", domain, err))
		return append(d, storeFingerprint(ctx, private, nil)...)
	}
	return storeFingerprint(ctx, private, &f)
}

// checkRemoteKey is Read's half of the key check: it compares the key Live returned with the
// fingerprint of the key last sent and records the outcome for the plan. With the plain
// auth_sign_key (writeOnly false) the state itself shows a changed key, and any fingerprint
// left from an earlier write-only configuration is dropped.
func checkRemoteKey(ctx context.Context, prior, next privateStore, domain, remoteKey string, writeOnly bool) diag.Diagnostics {
	f, ok, diags := loadFingerprint(ctx, prior)
	if !ok {
		return diags
	}
	if !writeOnly {
		return append(diags, storeFingerprint(ctx, next, nil)...)
	}
	differs := !f.matches(domain, remoteKey)
	if differs {
		tflog.Warn(ctx, "the signing key on Live is not the key last sent", map[string]any{"domain": domain})
	}
	if differs == f.RemoteDiffers {
		return diags
	}
	f.RemoteDiffers = differs
	return append(diags, storeFingerprint(ctx, next, &f)...)
}
