// Package provider implements the livehook Terraform provider (terraform-plugin-framework,
// protocol 6): the provider configuration, the livehook_publish_notification resource, data
// source and ephemeral resource. All Live API traffic goes through one internal/liveapi client
// per provider instance, so retries and the client-side rate limit are shared by every resource.
package provider

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/float64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/livehook/terraform-provider-livehook/internal/aksk"
	"github.com/livehook/terraform-provider-livehook/internal/liveapi"
)

// Address is the provider's registry address (main.go serves it under this name).
const Address = "registry.terraform.io/livehook/livehook"

// Environment variables read when the matching provider argument is not set.
const (
	EnvRegion        = "HW_REGION_NAME"
	EnvProjectID     = "HW_PROJECT_ID"
	EnvAccessKey     = "HW_ACCESS_KEY"
	EnvSecretKey     = "HW_SECRET_KEY"
	EnvSecurityToken = "HW_SECURITY_TOKEN"
	EnvEndpoint      = "LIVEHOOK_ENDPOINT"
	// EnvMaxRetries and EnvRequestsPerSecond let a pipeline tune the client without editing
	// the configuration (e.g. a lower rate for a job that shares the account's quota).
	EnvMaxRetries        = "LIVEHOOK_MAX_RETRIES"
	EnvRequestsPerSecond = "LIVEHOOK_REQUESTS_PER_SECOND"
)

// maxRetriesLimit bounds max_retries (argument and environment variable alike).
const maxRetriesLimit = 50

var (
	_ provider.Provider                       = (*livehookProvider)(nil)
	_ provider.ProviderWithFunctions          = (*livehookProvider)(nil)
	_ provider.ProviderWithEphemeralResources = (*livehookProvider)(nil)
)

// livehookProvider is one provider instance; Terraform configures each instance once.
type livehookProvider struct {
	version string
	// getenv reads the environment fallbacks; tests replace it so they can run in parallel.
	getenv func(string) string
}

// New returns the provider factory for the given version (set by main from -ldflags).
func New(version string) func() provider.Provider {
	return func() provider.Provider {
		return &livehookProvider{version: version, getenv: os.Getenv}
	}
}

type providerModel struct {
	Region            types.String  `tfsdk:"region"`
	ProjectID         types.String  `tfsdk:"project_id"`
	AccessKey         types.String  `tfsdk:"access_key"`
	SecretKey         types.String  `tfsdk:"secret_key"`
	SecurityToken     types.String  `tfsdk:"security_token"`
	Endpoint          types.String  `tfsdk:"endpoint"`
	MaxRetries        types.Int64   `tfsdk:"max_retries"`
	RequestsPerSecond types.Float64 `tfsdk:"requests_per_second"`
}

// providerData is what resources and data sources receive from Configure.
type providerData struct {
	// notConfigured holds why there is no client when the provider block and the environment
	// set nothing at all: functions need no credentials, so the error waits until a resource
	// or data source needs the client.
	notConfigured []string

	client    *liveapi.Client
	projectID string
	endpoint  string // as configured ("" when derived from the region), for messages
	region    string

	// absent holds, per push domain, when this process last saw that it has no publish
	// notification (the takeover check of a planned create). See justCheckedAbsent.
	absent sync.Map // string -> time.Time
}

// justChecked is how recent a takeover check must be for Create to rely on it. During apply
// Terraform plans each resource again right before creating it, in the same provider process,
// so that check is milliseconds old; a second GET in Create would only double the requests
// (and the time a rate-limited apply takes) for no gain.
const justChecked = 5 * time.Second

// noteAbsent records that domain had no publish notification just now.
func (d *providerData) noteAbsent(domain string) { d.absent.Store(domain, time.Now()) }

// justCheckedAbsent reports (once) whether domain was found without a publish notification
// within justChecked.
func (d *providerData) justCheckedAbsent(domain string) bool {
	v, ok := d.absent.LoadAndDelete(domain)
	if !ok {
		return false
	}
	t, ok := v.(time.Time)
	return ok && time.Since(t) < justChecked
}

// providerDataFrom is the Configure of the resource and the data source: nil until the provider
// is configured (validation runs before), and a bug report when the framework hands something else.
func providerDataFrom(pd any, diags *diag.Diagnostics) *providerData {
	if pd == nil {
		return nil
	}
	data, ok := pd.(*providerData)
	if !ok {
		diags.AddError("Unexpected provider data",
			fmt.Sprintf("Expected *providerData, got %T. This is a bug in the livehook provider; please report it.", pd))
		return nil
	}
	if len(data.notConfigured) > 0 {
		diags.AddError("The livehook provider is not configured",
			"Resources and data sources of livehook call the Live API, but neither the provider \"livehook\" block nor the "+
				"environment sets any connection settings:\n- "+strings.Join(data.notConfigured, "\n- "))
		return nil
	}
	return data
}

func (p *livehookProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "livehook"
	resp.Version = p.version
}

var regionPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

func (p *livehookProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Manages [Huawei Cloud Live](https://support.huaweicloud.com/intl/en-us/live/) " +
			"publish notifications: the HTTP callbacks Live sends when a stream starts (`PUBLISH`) or stops " +
			"(`PUBLISH_DONE`) on a push domain. Requests are signed with an AK/SK pair.",
		Attributes: map[string]schema.Attribute{
			"region": schema.StringAttribute{
				MarkdownDescription: "Region of the Live service, e.g. `cn-north-4`; the endpoint is then " +
					"`https://live.<region>.myhuaweicloud.com`. Falls back to the `" + EnvRegion + "` environment " +
					"variable. Either `region` or `endpoint` is required.",
				Optional: true,
				Validators: []validator.String{
					stringvalidator.RegexMatches(regionPattern, "must be a region name such as cn-north-4 (lower-case letters, digits and hyphens)"),
				},
			},
			"project_id": schema.StringAttribute{
				MarkdownDescription: "ID of the project (per region) that owns the push domains, as shown on the " +
					"console's *My Credentials* page. Falls back to `" + EnvProjectID + "`. Required.",
				Optional: true,
			},
			"access_key": schema.StringAttribute{
				MarkdownDescription: "Access key (AK) used to sign requests. Falls back to `" + EnvAccessKey + "`. Required.",
				Optional:            true,
			},
			"secret_key": schema.StringAttribute{
				MarkdownDescription: "Secret key (SK) used to sign requests. Falls back to `" + EnvSecretKey + "`. Required. " +
					"Prefer the environment variable so the key stays out of configuration files.",
				Optional:  true,
				Sensitive: true,
			},
			"security_token": schema.StringAttribute{
				MarkdownDescription: "Security token of temporary credentials (sent as `X-Security-Token`). " +
					"Falls back to `" + EnvSecurityToken + "`. Only needed with temporary AK/SK.",
				Optional:  true,
				Sensitive: true,
			},
			"endpoint": schema.StringAttribute{
				MarkdownDescription: "Override of the Live API base URL, e.g. `http://127.0.0.1:8080` for the livehook " +
					"emulator or a private deployment. Falls back to `" + EnvEndpoint + "`. When set, `region` is not needed.",
				Optional: true,
				Validators: []validator.String{
					httpURLValidator,
				},
			},
			"max_retries": schema.Int64Attribute{
				MarkdownDescription: fmt.Sprintf("How many times a request is retried after a throttling answer (429), "+
					"a server error (5xx) or a connection error, with exponential backoff. `0` disables retries. Falls back to `%s`. Default: `%d`.",
					EnvMaxRetries, liveapi.DefaultMaxRetries),
				Optional: true,
				Validators: []validator.Int64{
					int64validator.Between(0, maxRetriesLimit),
				},
			},
			"requests_per_second": schema.Float64Attribute{
				MarkdownDescription: "Client-side limit on Live API requests per second, shared by every resource and " +
					"data source of this provider instance (retries included). `0` or unset means no limit. Falls back to `" +
					EnvRequestsPerSecond + "`. Lower it when applies are throttled (HTTP 429); when several pipelines share " +
					"one account's quota, give each a share so that their sum stays below the quota.",
				Optional: true,
				Validators: []validator.Float64{
					float64validator.AtLeast(0),
				},
			},
		},
	}
}

// setting describes one provider argument with its environment fallback.
type setting struct {
	attr  string
	env   string
	value types.String
}

// resolve returns the configured value, else the environment variable's value. Unknown
// values (known only after apply) cannot configure a client and are reported.
func (p *livehookProvider) resolve(s setting, resp *provider.ConfigureResponse) string {
	if s.value.IsUnknown() {
		resp.Diagnostics.AddAttributeError(path.Root(s.attr),
			"Unknown value for provider argument "+s.attr,
			fmt.Sprintf("The provider cannot create its Live API client because %q depends on a value that is only "+
				"known after apply. Set it to a value known at plan time (a literal or a variable), or leave it "+
				"out of the provider block and set the %s environment variable.", s.attr, s.env))
		return ""
	}
	if v := strings.TrimSpace(s.value.ValueString()); v != "" {
		return v
	}
	return strings.TrimSpace(p.getenv(s.env))
}

func (p *livehookProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var cfg providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &cfg)...)
	if resp.Diagnostics.HasError() {
		return
	}

	region := p.resolve(setting{"region", EnvRegion, cfg.Region}, resp)
	projectID := p.resolve(setting{"project_id", EnvProjectID, cfg.ProjectID}, resp)
	accessKey := p.resolve(setting{"access_key", EnvAccessKey, cfg.AccessKey}, resp)
	secretKey := p.resolve(setting{"secret_key", EnvSecretKey, cfg.SecretKey}, resp)
	token := p.resolve(setting{"security_token", EnvSecurityToken, cfg.SecurityToken}, resp)
	endpoint := p.resolve(setting{"endpoint", EnvEndpoint, cfg.Endpoint}, resp)
	if cfg.MaxRetries.IsUnknown() || cfg.RequestsPerSecond.IsUnknown() {
		for _, a := range []struct {
			name    string
			unknown bool
		}{{"max_retries", cfg.MaxRetries.IsUnknown()}, {"requests_per_second", cfg.RequestsPerSecond.IsUnknown()}} {
			if a.unknown {
				resp.Diagnostics.AddAttributeError(path.Root(a.name), "Unknown value for provider argument "+a.name,
					fmt.Sprintf("%q depends on a value that is only known after apply; set it to a value known at plan time or leave it out.", a.name))
			}
		}
	}
	if resp.Diagnostics.HasError() {
		return
	}

	type missingSetting struct{ attr, summary, detail string }
	var missing []missingSetting
	need := func(attr, env, what string) {
		missing = append(missing, missingSetting{attr, "Missing " + what,
			fmt.Sprintf("The provider needs %s to call the Live API. Set %q in the provider \"livehook\" block "+
				"or set the %s environment variable.", what, attr, env)})
	}
	if accessKey == "" {
		need("access_key", EnvAccessKey, "an access key (AK)")
	}
	if secretKey == "" {
		need("secret_key", EnvSecretKey, "a secret key (SK)")
	}
	if projectID == "" {
		need("project_id", EnvProjectID, "a project ID")
	}
	if region == "" && endpoint == "" {
		missing = append(missing, missingSetting{"region", "Missing region or endpoint",
			fmt.Sprintf("The provider needs to know where the Live API is. Set \"region\" (e.g. \"cn-north-4\") or the %s "+
				"environment variable, or set \"endpoint\" (e.g. the emulator's URL) or the %s environment variable.",
				EnvRegion, EnvEndpoint)})
	}
	// Nothing set at all: a configuration that only calls provider functions. Defer the
	// errors to the first resource or data source that needs the client.
	if accessKey == "" && secretKey == "" && projectID == "" && region == "" && endpoint == "" && token == "" {
		var why []string
		for _, m := range missing {
			why = append(why, m.detail)
		}
		data := &providerData{notConfigured: why}
		resp.ResourceData = data
		resp.DataSourceData = data
		resp.EphemeralResourceData = data
		return
	}
	for _, m := range missing {
		resp.Diagnostics.AddAttributeError(path.Root(m.attr), m.summary, m.detail)
	}
	maxRetries, rps := p.clientLimits(cfg, resp)
	// Values from the environment bypass schema validators, so check them here as well.
	if endpoint != "" && cfg.Endpoint.IsNull() {
		if msg := checkHTTPURL(endpoint); msg != "" {
			resp.Diagnostics.AddAttributeError(path.Root("endpoint"), "Invalid endpoint",
				fmt.Sprintf("The %s environment variable %s.", EnvEndpoint, msg))
		}
	}
	if region != "" && cfg.Region.IsNull() && !regionPattern.MatchString(region) {
		resp.Diagnostics.AddAttributeError(path.Root("region"), "Invalid region",
			fmt.Sprintf("The %s environment variable must be a region name such as cn-north-4, got %q.", EnvRegion, region))
	}
	if resp.Diagnostics.HasError() {
		return
	}

	secrets := []string{secretKey, token}
	logger := slog.New(newTFLogHandler("liveapi", secrets))
	ua := fmt.Sprintf("terraform-provider-livehook/%s (+https://github.com/livehook/terraform-provider-livehook)", p.version)
	if req.TerraformVersion != "" {
		ua = fmt.Sprintf("Terraform/%s (+https://www.terraform.io) %s", req.TerraformVersion, ua)
	}

	client, err := liveapi.New(liveapi.Config{
		Endpoint:          endpoint,
		Region:            region,
		ProjectID:         projectID,
		Credentials:       aksk.Credentials{AccessKey: accessKey, SecretKey: secretKey, SecurityToken: token},
		MaxRetries:        maxRetries,
		RequestsPerSecond: rps,
		UserAgent:         ua,
		Logger:            logger,
	})
	if err != nil {
		resp.Diagnostics.AddError("Cannot create the Live API client",
			fmt.Sprintf("%v\n\nCheck the provider \"livehook\" arguments and the HW_* / %s environment variables.", err, EnvEndpoint))
		return
	}

	tflog.Debug(ctx, "configured Live API client", map[string]any{
		"endpoint":            orDefault(endpoint, fmt.Sprintf(liveapi.DefaultEndpointTemplate, region)),
		"region":              region,
		"project_id":          projectID,
		"access_key":          maskAccessKey(accessKey),
		"temporary":           token != "",
		"max_retries":         effectiveRetries(maxRetries),
		"requests_per_second": rps,
		"user_agent":          ua,
	})

	data := &providerData{client: client, projectID: projectID, endpoint: endpoint, region: region}
	resp.ResourceData = data
	resp.DataSourceData = data
	resp.EphemeralResourceData = data
}

// clientLimits resolves max_retries (in liveapi's convention: 0 default, -1 none) and
// requests_per_second from the configuration, else from their environment variables, which
// bypass the schema validators and are checked here.
func (p *livehookProvider) clientLimits(cfg providerModel, resp *provider.ConfigureResponse) (maxRetries int, rps float64) {
	n := int64(-1) // unset
	if !cfg.MaxRetries.IsNull() {
		n = cfg.MaxRetries.ValueInt64()
	} else if v := strings.TrimSpace(p.getenv(EnvMaxRetries)); v != "" {
		parsed, err := strconv.ParseInt(v, 10, 64)
		if err != nil || parsed < 0 || parsed > maxRetriesLimit {
			resp.Diagnostics.AddAttributeError(path.Root("max_retries"), "Invalid "+EnvMaxRetries,
				fmt.Sprintf("The %s environment variable must be a whole number from 0 (no retries) to %d, got %q.",
					EnvMaxRetries, maxRetriesLimit, v))
		} else {
			n = parsed
		}
	}
	switch {
	case n < 0:
		maxRetries = 0
	case n == 0:
		maxRetries = -1
	default:
		maxRetries = int(n)
	}

	if !cfg.RequestsPerSecond.IsNull() {
		return maxRetries, cfg.RequestsPerSecond.ValueFloat64()
	}
	if v := strings.TrimSpace(p.getenv(EnvRequestsPerSecond)); v != "" {
		parsed, err := strconv.ParseFloat(v, 64)
		if err != nil || parsed < 0 || math.IsNaN(parsed) || math.IsInf(parsed, 0) {
			resp.Diagnostics.AddAttributeError(path.Root("requests_per_second"), "Invalid "+EnvRequestsPerSecond,
				fmt.Sprintf("The %s environment variable must be a number of requests per second, 0 (no limit) or more, "+
					"such as 5 or 0.5, got %q.", EnvRequestsPerSecond, v))
			return maxRetries, 0
		}
		rps = parsed
	}
	return maxRetries, rps
}

func (p *livehookProvider) Functions(_ context.Context) []func() function.Function {
	return []func() function.Function{NewCallbackSignatureFunction}
}

func (p *livehookProvider) Resources(_ context.Context) []func() resource.Resource {
	return []func() resource.Resource{NewPublishNotificationResource}
}

func (p *livehookProvider) DataSources(_ context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{NewPublishNotificationDataSource}
}

func (p *livehookProvider) EphemeralResources(_ context.Context) []func() ephemeral.EphemeralResource {
	return []func() ephemeral.EphemeralResource{NewPublishNotificationEphemeralResource}
}

// effectiveRetries turns liveapi's MaxRetries convention (0 default, -1 none) into a count for logs.
func effectiveRetries(n int) int {
	switch {
	case n == 0:
		return liveapi.DefaultMaxRetries
	case n < 0:
		return 0
	}
	return n
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// maskAccessKey keeps enough of an access key to tell keys apart in logs.
func maskAccessKey(ak string) string {
	if len(ak) <= 4 {
		return "****"
	}
	return ak[:4] + "****"
}

// checkHTTPURL returns "" for an absolute http(s) URL with a host, else what is wrong
// (phrased to follow "... must be" style sentences: "is not ...").
func checkHTTPURL(s string) string {
	if !strings.Contains(s, "://") {
		return fmt.Sprintf("must start with http:// or https://, got %q", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Sprintf("is not a valid URL (%v)", stripURLErr(err))
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "":
		return fmt.Sprintf("must start with http:// or https://, got %q", s)
	default:
		return fmt.Sprintf("must use the http or https scheme, got %q", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Sprintf("must name a host (http://HOST/...), got %q", s)
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return "must not contain spaces or line breaks"
	}
	return ""
}

// stripURLErr drops url.Error's repetition of the whole input.
func stripURLErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// apiLocation is used in messages: the configured endpoint or the regional default.
func (d *providerData) apiLocation() string {
	if d.endpoint != "" {
		return d.endpoint
	}
	return fmt.Sprintf(liveapi.DefaultEndpointTemplate, d.region)
}
