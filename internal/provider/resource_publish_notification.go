package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-timeouts/resource/timeouts"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/livehook/terraform-provider-livehook/internal/liveapi"
)

const (
	defaultTimeout     = 5 * time.Minute
	defaultTimeoutText = "5m" // defaultTimeout as written in docs
)

var (
	_ resource.Resource                     = (*publishNotificationResource)(nil)
	_ resource.ResourceWithConfigure        = (*publishNotificationResource)(nil)
	_ resource.ResourceWithImportState      = (*publishNotificationResource)(nil)
	_ resource.ResourceWithConfigValidators = (*publishNotificationResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*publishNotificationResource)(nil)
)

// NewPublishNotificationResource is the livehook_publish_notification resource factory.
func NewPublishNotificationResource() resource.Resource {
	return &publishNotificationResource{}
}

type publishNotificationResource struct {
	data *providerData
}

type publishNotificationModel struct {
	ID                   types.String   `tfsdk:"id"`
	Domain               types.String   `tfsdk:"domain"`
	URL                  types.String   `tfsdk:"url"`
	AuthSignKey          types.String   `tfsdk:"auth_sign_key"`
	AuthSignKeyWO        types.String   `tfsdk:"auth_sign_key_wo"`
	AuthSignKeyWOVersion types.Int64    `tfsdk:"auth_sign_key_wo_version"`
	CallBackArea         types.String   `tfsdk:"call_back_area"`
	Timeouts             timeouts.Value `tfsdk:"timeouts"`
}

func (r *publishNotificationResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_publish_notification"
}

func (r *publishNotificationResource) Schema(ctx context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	keyRules := fmt.Sprintf("%d to %d characters", minAuthSignKey, maxAuthSignKey)
	resp.Schema = schema.Schema{
		MarkdownDescription: "Manages the publish notification of one Huawei Cloud Live push domain: the URL that Live calls " +
			"(HTTP POST) when a stream starts (`PUBLISH`) or stops (`PUBLISH_DONE`), the optional key used to sign those " +
			"callbacks, and where the callbacks are sent from.\n\n" +
			"A push domain has at most one publish notification. Planning this resource for a domain that already has one " +
			"fails (`terraform plan` already, before anything is applied) and tells you how to import it instead.\n\n" +
			"With the write-only key (`auth_sign_key_wo`) the provider keeps a keyed hash of the key it last sent in the " +
			"resource's private state (never the key itself). The plan warns when the key on Live no longer matches it " +
			"(changed outside Terraform) and when `auth_sign_key_wo` changed but `auth_sign_key_wo_version` did not.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				MarkdownDescription: "The push domain (same as `domain`); the import ID.",
				Computed:            true,
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"domain": schema.StringAttribute{
				MarkdownDescription: "The push (ingest) domain, e.g. `push.example.com`. It must already exist in the Live " +
					"console in the provider's project and region. Changing it replaces the resource.",
				Required:      true,
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:    []validator.String{hostnameValidator},
			},
			"url": schema.StringAttribute{
				MarkdownDescription: "Callback URL that receives the notifications; `http://` or `https://` with a host. It is " +
					"sent and stored exactly as written (no normalisation).",
				Required:   true,
				Validators: []validator.String{httpURLValidator},
			},
			"auth_sign_key": schema.StringAttribute{
				MarkdownDescription: "Key (" + keyRules + ") Live uses to sign each callback (`auth_sign`, see the callback " +
					"documentation). Stored in the Terraform state (marked sensitive). Conflicts with `auth_sign_key_wo`, " +
					"which keeps the key out of the state. Omit both to send unsigned callbacks.",
				Optional:   true,
				Sensitive:  true,
				Validators: []validator.String{keyLengthValidator},
			},
			"auth_sign_key_wo": schema.StringAttribute{
				MarkdownDescription: "Write-only variant of `auth_sign_key` (Terraform 1.11 or later): the key (" + keyRules +
					") is sent to Live but never stored in the plan or the state. Requires `auth_sign_key_wo_version`; the " +
					"key is only sent again when that version changes, so change both together to rotate the key. " +
					"A key changed outside Terraform, or a new `auth_sign_key_wo` without a new version, is reported as a " +
					"warning in the plan (from a keyed hash of the last sent key, kept in private state).",
				Optional:   true,
				Sensitive:  true,
				WriteOnly:  true,
				Validators: []validator.String{keyLengthValidator, stringvalidator.AlsoRequires(path.MatchRoot("auth_sign_key_wo_version"))},
			},
			"auth_sign_key_wo_version": schema.Int64Attribute{
				MarkdownDescription: "Version of `auth_sign_key_wo`. Any change (e.g. incrementing it) triggers an update " +
					"that sends the current `auth_sign_key_wo` to Live. Required with `auth_sign_key_wo`.",
				Optional:   true,
				Validators: []validator.Int64{int64validator.AlsoRequires(path.MatchRoot("auth_sign_key_wo"))},
			},
			"call_back_area": schema.StringAttribute{
				MarkdownDescription: "Where Live sends the callbacks from: `" + AreaMainlandChina + "` or `" +
					AreaOutsideMainlandChina + "`. Omit it to leave it unset (Live then chooses).",
				Optional:   true,
				Validators: []validator.String{callBackAreaValidator},
			},
		},
		Blocks: map[string]schema.Block{
			"timeouts": timeoutsBlock(ctx),
		},
	}
}

// timeoutsBlock is the framework-timeouts block with descriptions for the docs.
func timeoutsBlock(ctx context.Context) schema.Block {
	d := func(op string) string {
		return fmt.Sprintf("How long %s may take, as a duration such as `\"10m\"` or `\"90s\"`. Default: `\"%s\"`.",
			op, defaultTimeoutText)
	}
	b, ok := timeouts.Block(ctx, timeouts.Opts{
		Create: true, Read: true, Update: true, Delete: true,
		CreateDescription: d("creating the notification"),
		ReadDescription:   d("reading the notification (refresh)"),
		UpdateDescription: d("updating the notification"),
		DeleteDescription: d("deleting the notification"),
	}).(schema.SingleNestedBlock)
	if !ok { // the library's documented return type; keep working if it ever changes
		return timeouts.Block(ctx, timeouts.Opts{Create: true, Read: true, Update: true, Delete: true})
	}
	b.MarkdownDescription = "Timeouts of the operations. Retries and the client-side rate limit (`requests_per_second`) count towards them."
	return b
}

func (r *publishNotificationResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{
		resourcevalidator.Conflicting(path.MatchRoot("auth_sign_key"), path.MatchRoot("auth_sign_key_wo")),
	}
}

func (r *publishNotificationResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

// begin reads the plan or state (get) into a model and starts the operation's timeout (one of
// timeouts.Value's Create, Read, Update, Delete). ok is false when diags got an error.
func begin(ctx context.Context, get func(context.Context, any) diag.Diagnostics,
	timeoutOf func(timeouts.Value, context.Context, time.Duration) (time.Duration, diag.Diagnostics),
	diags *diag.Diagnostics,
) (m publishNotificationModel, timeout time.Duration, opCtx context.Context, cancel context.CancelFunc, ok bool) {
	diags.Append(get(ctx, &m)...)
	if diags.HasError() {
		return m, 0, ctx, nil, false
	}
	timeout, d := timeoutOf(m.Timeouts, ctx, defaultTimeout)
	diags.Append(d...)
	if diags.HasError() {
		return m, 0, ctx, nil, false
	}
	opCtx, cancel = context.WithTimeout(ctx, timeout)
	return m, timeout, opCtx, cancel, true
}

// write is Create and Update: the planned values plus the write-only key (which only the
// configuration holds), one PUT (the API replaces the whole config, so every field is sent), and
// the plan as the new state. precheck, if set, runs just before the PUT with the secrets already
// masked. created is the PUT's report that no config existed; ok is false when diags got an error.
func (r *publishNotificationResource) write(ctx context.Context, op string, planIn tfsdk.Plan, config tfsdk.Config,
	timeoutOf func(timeouts.Value, context.Context, time.Duration) (time.Duration, diag.Diagnostics),
	precheck func(ctx context.Context, domain string, timeout time.Duration, diags *diag.Diagnostics) bool,
	state *tfsdk.State, private privateStore, diags *diag.Diagnostics,
) (domain string, created, ok bool) {
	plan, timeout, ctx, cancel, ok := begin(ctx, planIn.Get, timeoutOf, diags)
	if !ok {
		return "", false, false
	}
	defer cancel()

	domain = plan.Domain.ValueString()
	var wo types.String
	diags.Append(config.GetAttribute(ctx, path.Root("auth_sign_key_wo"), &wo)...)
	if diags.HasError() {
		return domain, false, false
	}
	n := notificationFromModel(plan, wo)
	ctx = maskSecrets(ctx, n.AuthSignKey)
	if precheck != nil && !precheck(ctx, domain, timeout, diags) {
		return domain, false, false
	}

	tflog.Debug(ctx, op+" publish notification", map[string]any{
		"domain": domain, "url": n.URL, "call_back_area": n.CallBackArea, "key_set": n.AuthSignKey != "", "write_only_key": !wo.IsNull(),
	})
	created, err := r.data.client.Put(ctx, domain, n)
	if err != nil {
		diags.Append(apiErrorDiagnostic(r.data, op, domain, timeout, err))
		return domain, false, false
	}
	plan.ID = types.StringValue(domain)
	plan.AuthSignKeyWO = types.StringNull() // never in state (the framework nulls it too)
	diags.Append(state.Set(ctx, plan)...)
	diags.Append(recordSentKey(ctx, private, domain, wo)...)
	diags.Append(markManaged(ctx, private, domain)...)
	return domain, created, !diags.HasError()
}

func (r *publishNotificationResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	domain, created, ok := r.write(ctx, "create", req.Plan, req.Config, timeouts.Value.Create, r.refuseExistingAtCreate,
		&resp.State, resp.Private, &resp.Diagnostics)
	if ok && !created {
		resp.Diagnostics.AddWarning("Publish notification overwritten",
			fmt.Sprintf("A publish notification for %q appeared between the provider's existence check and its write, and "+
				"was overwritten with this configuration.", domain))
	}
}

// refuseExisting is the takeover check of ModifyPlan (so that `terraform plan` fails before
// anything is applied, and again in the plan Terraform makes during the apply) and of Create
// (for a config that appears between the plan and the apply): taking over a config made
// elsewhere would silently overwrite it, so an existing one is an error with the import hint.
func (r *publishNotificationResource) refuseExisting(ctx context.Context, domain string, timeout time.Duration, diags *diag.Diagnostics) bool {
	existing, err := r.data.client.Get(ctx, domain)
	switch {
	case err == nil:
		diags.AddAttributeError(path.Root("domain"), "Publish notification already exists", alreadyExistsDetail(domain, existing))
		return false
	case errors.Is(err, liveapi.ErrNotFound):
		return true // expected: go on and create it (an unknown domain is reported by the PUT)
	default:
		// The check is a GET: say so, rather than blaming the create itself.
		diags.Append(apiErrorDiagnostic(r.data, "look up", domain, timeout, err))
		return false
	}
}

// refuseExistingAtCreate is Create's precheck: refuseExisting, unless the plan Terraform makes
// during the apply, right before this create, has just checked the domain (justChecked).
func (r *publishNotificationResource) refuseExistingAtCreate(ctx context.Context, domain string, timeout time.Duration, diags *diag.Diagnostics) bool {
	if r.data.justCheckedAbsent(domain) {
		return true
	}
	return r.refuseExisting(ctx, domain, timeout, diags)
}

func (r *publishNotificationResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	state, timeout, ctx, cancel, ok := begin(ctx, req.State.Get, timeouts.Value.Read, &resp.Diagnostics)
	if !ok {
		return
	}
	defer cancel()

	domain := state.Domain.ValueString() // import sets it too
	n, err := r.data.client.Get(ctx, domain)
	if errors.Is(err, liveapi.ErrNotFound) {
		// Deleted outside Terraform: drop it so the next plan re-creates it.
		tflog.Warn(ctx, "publish notification not found; removing it from state", map[string]any{"domain": domain})
		resp.State.RemoveResource(ctx)
		return
	}
	if err != nil {
		resp.Diagnostics.Append(apiErrorDiagnostic(r.data, "read", domain, timeout, err))
		return
	}
	ctx = maskSecrets(ctx, n.AuthSignKey)

	state.ID = types.StringValue(domain)
	state.Domain = types.StringValue(domain)
	state.URL = types.StringValue(n.URL)
	state.CallBackArea = stringOrNull(n.CallBackArea)
	// With the write-only variant (recognised by its version) the remote key is not put in
	// the state: auth_sign_key stays null, or the plan would always show a difference.
	if state.AuthSignKeyWOVersion.IsNull() {
		state.AuthSignKey = stringOrNull(n.AuthSignKey)
	} else {
		state.AuthSignKey = types.StringNull()
	}
	state.AuthSignKeyWO = types.StringNull()
	resp.Diagnostics.Append(checkRemoteKey(ctx, req.Private, resp.Private, domain, n.AuthSignKey, !state.AuthSignKeyWOVersion.IsNull())...)
	tflog.Debug(ctx, "read publish notification", map[string]any{
		"domain": domain, "url": n.URL, "call_back_area": n.CallBackArea, "key_set": n.AuthSignKey != "",
	})
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

func (r *publishNotificationResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	r.write(ctx, "update", req.Plan, req.Config, timeouts.Value.Update, nil, &resp.State, resp.Private, &resp.Diagnostics)
}

func (r *publishNotificationResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	state, timeout, ctx, cancel, ok := begin(ctx, req.State.Get, timeouts.Value.Delete, &resp.Diagnostics)
	if !ok {
		return
	}
	defer cancel()

	domain := state.Domain.ValueString()
	tflog.Debug(ctx, "deleting publish notification", map[string]any{"domain": domain})
	// liveapi treats "already gone" as success.
	if err := r.data.client.Delete(ctx, domain); err != nil {
		resp.Diagnostics.Append(apiErrorDiagnostic(r.data, "delete", domain, timeout, err))
	}
}

// ImportState takes the push domain as the import ID (terraform import and import blocks).
func (r *publishNotificationResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if msg := checkHostname(req.ID); msg != "" {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("The import ID is the push domain (e.g. push.example.com); %q %s.", req.ID, msg))
		return
	}
	resource.ImportStatePassthroughID(ctx, path.Root("domain"), req, resp)
	resource.ImportStatePassthroughID(ctx, path.Root("id"), req, resp)
}

func notificationFromModel(m publishNotificationModel, wo types.String) liveapi.Notification {
	key := m.AuthSignKey.ValueString()
	if m.AuthSignKey.IsNull() {
		key = wo.ValueString()
	}
	return liveapi.Notification{
		URL:          m.URL.ValueString(),
		AuthSignKey:  key,
		CallBackArea: m.CallBackArea.ValueString(),
	}
}

func stringOrNull(s string) types.String {
	if s == "" {
		return types.StringNull()
	}
	return types.StringValue(s)
}

// alreadyExistsDetail explains how to bring an existing config under Terraform. The
// resource's own name is not part of the protocol, so a placeholder stands in for it.
func alreadyExistsDetail(domain string, existing *liveapi.Notification) string {
	return fmt.Sprintf(`The push domain %q already has a publish notification (callback URL %q), created outside this `+
		`Terraform state. The provider does not take it over silently, since that would overwrite it.

To manage it with Terraform, import it (replace <name> with this resource's name) and run terraform apply again:

  terraform import livehook_publish_notification.<name> %s

or, with Terraform 1.5 or later, add an import block to the configuration:

  import {
    to = livehook_publish_notification.<name>
    id = %q
  }

To let Terraform create it from scratch instead, delete the existing notification in the Live console first.

If this resource created it and is now tainted (Terraform plans a tainted resource as a new one and
tells the provider nothing about the old), run terraform untaint livehook_publish_notification.<name>
to keep it, or terraform apply -replace=livehook_publish_notification.<name> to recreate it.`,
		domain, existing.URL, domain, domain)
}
