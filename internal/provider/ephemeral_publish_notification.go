package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

var (
	_ ephemeral.EphemeralResource              = (*publishNotificationEphemeral)(nil)
	_ ephemeral.EphemeralResourceWithConfigure = (*publishNotificationEphemeral)(nil)
)

// NewPublishNotificationEphemeralResource is the livehook_publish_notification ephemeral
// resource factory: the data source's values, the key included, without a trace in the plan
// or the state, so the key can go on to write-only arguments and provider configuration.
func NewPublishNotificationEphemeralResource() ephemeral.EphemeralResource {
	return &publishNotificationEphemeral{}
}

type publishNotificationEphemeral struct {
	data *providerData
}

func (e *publishNotificationEphemeral) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_publish_notification"
}

func (e *publishNotificationEphemeral) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads the publish notification of one Huawei Cloud Live push domain, signing key included, " +
			"without storing anything in the plan or the state (Terraform 1.10 or later). Use it to hand the key on to " +
			"write-only arguments (such as a Kubernetes Secret's `data_wo` for the archiver's `--keys` file) or to " +
			"provider configuration; the `livehook_publish_notification` data source would put the key in the state. " +
			"Fails when the domain has no publish notification.",
		Attributes: map[string]schema.Attribute{
			"domain": schema.StringAttribute{
				MarkdownDescription: "The push (ingest) domain, e.g. `push.example.com`.",
				Required:            true,
				Validators:          []validator.String{hostnameValidator},
			},
			"id": schema.StringAttribute{
				MarkdownDescription: "The push domain (same as `domain`).",
				Computed:            true,
			},
			"url": schema.StringAttribute{
				MarkdownDescription: "Callback URL that receives the `PUBLISH` and `PUBLISH_DONE` notifications.",
				Computed:            true,
			},
			"call_back_area": schema.StringAttribute{
				MarkdownDescription: "Where Live sends the callbacks from (`" + AreaMainlandChina + "` or `" +
					AreaOutsideMainlandChina + "`); null when not set.",
				Computed: true,
			},
			"auth_sign_key_set": schema.BoolAttribute{
				MarkdownDescription: "Whether the callbacks are signed, i.e. a key is configured.",
				Computed:            true,
			},
			"auth_sign_key": schema.StringAttribute{
				MarkdownDescription: "The callback signing key; null when none. Sensitive, and like every value of an " +
					"ephemeral resource never stored in the plan or the state.",
				Computed:  true,
				Sensitive: true,
			},
		},
	}
}

func (e *publishNotificationEphemeral) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	e.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (e *publishNotificationEphemeral) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	var m publishNotificationDataModel // the data source's attributes, read the same way
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if e.data == nil { // the framework configures the provider first; say so rather than panic
		resp.Diagnostics.AddError("The livehook provider is not configured",
			"The ephemeral resource livehook_publish_notification was opened before the provider was configured. "+
				"Check that the provider \"livehook\" block does not depend on this ephemeral resource.")
		return
	}
	ctx, diags := readInto(ctx, e.data, &m, "ephemeral")
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.Result.Set(ctx, m)...)
}
