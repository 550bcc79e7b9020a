package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/livehook/terraform-provider-livehook/internal/liveapi"
)

var (
	_ datasource.DataSource              = (*publishNotificationDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*publishNotificationDataSource)(nil)
)

// NewPublishNotificationDataSource is the livehook_publish_notification data source factory.
func NewPublishNotificationDataSource() datasource.DataSource {
	return &publishNotificationDataSource{}
}

type publishNotificationDataSource struct {
	data *providerData
}

type publishNotificationDataModel struct {
	ID             types.String `tfsdk:"id"`
	Domain         types.String `tfsdk:"domain"`
	URL            types.String `tfsdk:"url"`
	CallBackArea   types.String `tfsdk:"call_back_area"`
	AuthSignKeySet types.Bool   `tfsdk:"auth_sign_key_set"`
	AuthSignKey    types.String `tfsdk:"auth_sign_key"`
}

func (d *publishNotificationDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_publish_notification"
}

func (d *publishNotificationDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads the publish notification of one Huawei Cloud Live push domain, whether or not " +
			"Terraform manages it. Fails when the domain has no publish notification.",
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
				MarkdownDescription: "The callback signing key; null when none. Sensitive: it ends up in the state of " +
					"the configuration that reads it, so prefer `auth_sign_key_set`, or the `livehook_publish_notification` " +
					"ephemeral resource when you need the key itself (it stores nothing).",
				Computed:  true,
				Sensitive: true,
			},
		},
	}
}

func (d *publishNotificationDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.data = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *publishNotificationDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var cfg publishNotificationDataModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, diags := readInto(ctx, d.data, &cfg, "data source")
	resp.Diagnostics.Append(diags...)
	if diags.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, cfg)...)
}

// readInto is the read of the data source and the ephemeral resource: it fills m from the
// domain's config. The returned context masks the key in every later log line.
func readInto(ctx context.Context, data *providerData, m *publishNotificationDataModel, what string) (context.Context, diag.Diagnostics) {
	getCtx, cancel := context.WithTimeout(ctx, defaultTimeout)
	defer cancel()
	domain := m.Domain.ValueString()
	n, diags := getNotification(getCtx, data, domain)
	if diags.HasError() {
		return ctx, diags
	}
	ctx = maskSecrets(ctx, n.AuthSignKey)
	tflog.Debug(ctx, "read publish notification ("+what+")", map[string]any{"domain": domain, "key_set": n.AuthSignKey != ""})
	m.ID = types.StringValue(domain)
	m.URL = types.StringValue(n.URL)
	m.CallBackArea = stringOrNull(n.CallBackArea)
	m.AuthSignKeySet = types.BoolValue(n.AuthSignKey != "")
	m.AuthSignKey = stringOrNull(n.AuthSignKey)
	return ctx, diags
}

// getNotification is the read of the data source and the ephemeral resource: the domain's
// config, or an error that says what to do (no config for the domain, or the API's error).
func getNotification(ctx context.Context, data *providerData, domain string) (*liveapi.Notification, diag.Diagnostics) {
	var diags diag.Diagnostics
	n, err := data.client.Get(ctx, domain)
	if errors.Is(err, liveapi.ErrNotFound) {
		detail := fmt.Sprintf("The push domain %q has no publish notification configured in project %s (%s).\n\n"+
			"Create one with the livehook_publish_notification resource, or check the domain name, project_id and region.",
			domain, data.projectID, data.apiLocation())
		var apiErr *liveapi.APIError
		if errors.As(err, &apiErr) {
			detail += fmt.Sprintf(" The Live API answered HTTP %d %s: %s (request ID %s), which it also answers for a "+
				"domain that does not exist in this project and region.", apiErr.StatusCode, apiErr.Code, apiErr.Message,
				orDefault(apiErr.RequestID, "(none)"))
		}
		diags.AddAttributeError(path.Root("domain"), "No publish notification for "+domain, detail)
		return nil, diags
	}
	if err != nil {
		diags.Append(apiErrorDiagnostic(data, "read", domain, defaultTimeout, err))
		return nil, diags
	}
	return n, diags
}
