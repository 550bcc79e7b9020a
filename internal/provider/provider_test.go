package provider

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-log/tflogtest"

	"github.com/livehook/terraform-provider-livehook/internal/liveapi"
)

// configure runs the provider's Configure with the given provider-block values (missing
// attributes are null; tftypes.UnknownValue marks a value unknown at plan) and environment.
func configure(t *testing.T, vals map[string]any, env map[string]string) (*provider.ConfigureResponse, *livehookProvider) {
	t.Helper()
	ctx := context.Background()
	p := &livehookProvider{version: "test", getenv: func(k string) string { return env[k] }}
	var sresp provider.SchemaResponse
	p.Schema(ctx, provider.SchemaRequest{}, &sresp)
	if sresp.Diagnostics.HasError() {
		t.Fatalf("schema: %v", sresp.Diagnostics)
	}
	typ := sresp.Schema.Type().TerraformType(ctx).(tftypes.Object)
	raw := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		v, ok := vals[name]
		switch {
		case !ok:
			raw[name] = tftypes.NewValue(at, nil)
		case v == tftypes.UnknownValue:
			raw[name] = tftypes.NewValue(at, tftypes.UnknownValue)
		default:
			raw[name] = tftypes.NewValue(at, v)
		}
	}
	for name := range vals {
		if _, ok := typ.AttributeTypes[name]; !ok {
			t.Fatalf("test bug: no provider attribute %q", name)
		}
	}
	req := provider.ConfigureRequest{
		TerraformVersion: "1.11.4",
		Config:           tfsdk.Config{Schema: sresp.Schema, Raw: tftypes.NewValue(typ, raw)},
	}
	resp := &provider.ConfigureResponse{}
	p.Configure(ctx, req, resp)
	return resp, p
}

// attrErrors maps attribute name => error detail for attribute-level error diagnostics.
func attrErrors(t *testing.T, diags diag.Diagnostics) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range diags.Errors() {
		wp, ok := d.(diag.DiagnosticWithPath)
		if !ok {
			t.Fatalf("error without attribute path: %s: %s", d.Summary(), d.Detail())
		}
		out[wp.Path().String()] = d.Summary() + ": " + d.Detail()
	}
	return out
}

func TestConfigureMissingCredentials(t *testing.T) {
	t.Parallel()
	full := map[string]string{
		EnvRegion: "cn-north-4", EnvProjectID: "p1", EnvAccessKey: "AK", EnvSecretKey: "SK",
	}
	without := func(keys ...string) map[string]string {
		m := map[string]string{}
		for k, v := range full {
			m[k] = v
		}
		for _, k := range keys {
			delete(m, k)
		}
		return m
	}
	tests := []struct {
		name string
		vals map[string]any
		env  map[string]string
		want map[string][]string // attribute => substrings of its diagnostic
	}{
		{
			name: "only the region set",
			env:  map[string]string{EnvRegion: "cn-north-4"},
			want: map[string][]string{
				"access_key": {"Missing an access key", `"access_key"`, "HW_ACCESS_KEY"},
				"secret_key": {"HW_SECRET_KEY"},
				"project_id": {"HW_PROJECT_ID"},
			},
		},
		{
			name: "only the access key set",
			env:  map[string]string{EnvAccessKey: "AK"},
			want: map[string][]string{
				"secret_key": {"HW_SECRET_KEY"},
				"project_id": {"HW_PROJECT_ID"},
				"region":     {"HW_REGION_NAME", "LIVEHOOK_ENDPOINT"},
			},
		},
		{
			name: "only access key missing",
			env:  without(EnvAccessKey),
			want: map[string][]string{"access_key": {"HW_ACCESS_KEY"}},
		},
		{
			name: "empty string in config falls back to env, which is missing too",
			vals: map[string]any{"secret_key": ""},
			env:  without(EnvSecretKey),
			want: map[string][]string{"secret_key": {"HW_SECRET_KEY"}},
		},
		{
			name: "everything from the environment",
			env:  full,
		},
		{
			name: "everything from the provider block, endpoint instead of region",
			vals: map[string]any{"endpoint": "http://127.0.0.1:1", "project_id": "p", "access_key": "a", "secret_key": "s"},
			env:  map[string]string{},
		},
		{
			name: "endpoint from the environment instead of region",
			env:  map[string]string{EnvEndpoint: "http://127.0.0.1:1", EnvProjectID: "p", EnvAccessKey: "a", EnvSecretKey: "s"},
		},
		{
			name: "invalid endpoint from the environment",
			env:  map[string]string{EnvEndpoint: "127.0.0.1:1", EnvProjectID: "p", EnvAccessKey: "a", EnvSecretKey: "s"},
			want: map[string][]string{"endpoint": {"LIVEHOOK_ENDPOINT", "http://"}},
		},
		{
			name: "invalid region from the environment",
			env:  map[string]string{EnvRegion: "CN North 4", EnvProjectID: "p", EnvAccessKey: "a", EnvSecretKey: "s"},
			want: map[string][]string{"region": {"HW_REGION_NAME", "CN North 4"}},
		},
		{
			name: "unknown access key at plan time",
			vals: map[string]any{"access_key": tftypes.UnknownValue},
			env:  full,
			want: map[string][]string{"access_key": {"Unknown value", "only known after apply", "HW_ACCESS_KEY"}},
		},
		{
			name: "unknown endpoint and secret key",
			vals: map[string]any{"endpoint": tftypes.UnknownValue, "secret_key": tftypes.UnknownValue},
			env:  full,
			want: map[string][]string{
				"endpoint":   {"LIVEHOOK_ENDPOINT"},
				"secret_key": {"HW_SECRET_KEY"},
			},
		},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, _ := configure(t, tc.vals, tc.env)
			got := attrErrors(t, resp.Diagnostics)
			if len(got) != len(tc.want) {
				t.Fatalf("got errors %v, want errors on %v", got, keys(tc.want))
			}
			for attr, subs := range tc.want {
				msg, ok := got[attr]
				if !ok {
					t.Fatalf("no error on %s; got %v", attr, got)
				}
				for _, s := range subs {
					if !strings.Contains(msg, s) {
						t.Errorf("error on %s = %q, want it to contain %q", attr, msg, s)
					}
				}
			}
			if len(tc.want) == 0 {
				d, ok := resp.ResourceData.(*providerData)
				if !ok || d.client == nil || resp.DataSourceData != resp.ResourceData {
					t.Fatalf("want one shared client for resources and data sources, got %#v / %#v", resp.ResourceData, resp.DataSourceData)
				}
			}
		})
	}
}

func keys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestConfigureNeverEchoesSecrets checks that no diagnostic of a failing configuration shows
// the secret key or token.
func TestConfigureNeverEchoesSecrets(t *testing.T) {
	t.Parallel()
	resp, _ := configure(t, map[string]any{"secret_key": "S3CRET-VALUE", "security_token": "T0KEN-VALUE", "project_id": "bad/project"},
		map[string]string{EnvAccessKey: "AK", EnvRegion: "cn-north-4"})
	if !resp.Diagnostics.HasError() {
		t.Fatal("want an error for the invalid project ID")
	}
	for _, d := range resp.Diagnostics {
		if strings.Contains(d.Detail()+d.Summary(), "S3CRET") || strings.Contains(d.Detail()+d.Summary(), "T0KEN") {
			t.Fatalf("diagnostic shows a secret: %s: %s", d.Summary(), d.Detail())
		}
	}
}

// TestConfigureUserAgentAndSharedClient checks the User-Agent (provider and Terraform
// versions) and the max_retries mapping, against a narrow stub of the Live API.
func TestConfigureUserAgentAndSharedClient(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var uas []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		uas = append(uas, r.UserAgent())
		mu.Unlock()
		w.Header().Set("X-Request-Id", "req-1")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error_code":"LIVE.100011000","error_msg":"boom"}`))
	}))
	t.Cleanup(srv.Close)

	resp, _ := configure(t, map[string]any{
		"endpoint": srv.URL, "project_id": "p", "access_key": "a", "secret_key": "s", "max_retries": 0,
	}, nil)
	if resp.Diagnostics.HasError() {
		t.Fatalf("configure: %v", resp.Diagnostics)
	}
	d := resp.ResourceData.(*providerData)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := d.client.Get(ctx, "push.example.com")
	var apiErr *liveapi.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 {
		t.Fatalf("want a 500 APIError, got %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(uas) != 1 {
		t.Fatalf("max_retries = 0 must mean no retries, got %d requests", len(uas))
	}
	for _, want := range []string{"terraform-provider-livehook/test", "Terraform/1.11.4"} {
		if !strings.Contains(uas[0], want) {
			t.Errorf("User-Agent %q does not contain %q", uas[0], want)
		}
	}
}

func TestAPIErrorDiagnostic(t *testing.T) {
	t.Parallel()
	d := &providerData{projectID: "proj-1", endpoint: "http://127.0.0.1:9"}
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"unauthorized", &liveapi.APIError{Operation: "GET", Domain: "push.example.com", StatusCode: 401, Code: "APIGW.0301",
			Message: "Incorrect IAM authentication information", RequestID: "r-401", Attempts: 1},
			[]string{"HTTP 401", "APIGW.0301", "r-401", "access_key", "HW_SECRET_KEY", "clock"}},
		{"unknown domain", &liveapi.APIError{Operation: "PUT", Domain: "push.example.com", StatusCode: 400, Code: "LIVE.100011001",
			Message: "domain not found", RequestID: "r-400", Attempts: 1},
			[]string{"HTTP 400", "LIVE.100011001", "domain not found", "r-400", `"push.example.com" exists`, "proj-1"}},
		{"throttled", &liveapi.APIError{Operation: "PUT", Domain: "push.example.com", StatusCode: 429, Attempts: 7},
			[]string{"HTTP 429", "requests_per_second", "-parallelism", "7 attempt(s)", "Too Many Requests"}},
		{"server error", &liveapi.APIError{Operation: "DELETE", Domain: "push.example.com", StatusCode: 500, Code: "LIVE.100011000", Attempts: 7},
			[]string{"HTTP 500", "max_retries"}},
		{"forbidden", &liveapi.APIError{Operation: "GET", Domain: "push.example.com", StatusCode: 403}, []string{"permissions", "proj-1"}},
		{"timeout", context.DeadlineExceeded, []string{"Timed out", "timeouts { create = \"10m\" }"}},
		{"wrapped API error with timeout", errors.Join(&liveapi.APIError{Operation: "PUT", StatusCode: 429}, context.DeadlineExceeded),
			[]string{"HTTP 429", "timeouts { create"}},
		{"connection", errors.New("dial tcp: connection refused"), []string{"connection refused", "http://127.0.0.1:9", "reachable"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := apiErrorDiagnostic(d, "create", "push.example.com", time.Minute, tc.err)
			text := got.Summary() + "\n" + got.Detail()
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("diagnostic does not contain %q:\n%s", w, text)
				}
			}
		})
	}
}

// TestTFLogHandlerMasksSecrets checks that slog records from the liveapi client reach
// tflog with the secrets masked.
func TestTFLogHandlerMasksSecrets(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	ctx := tflogtest.RootLogger(context.Background(), &buf)
	logger := slog.New(newTFLogHandler("liveapi", []string{"SK-VERY-SECRET", ""})).With("client", "x")
	logger.DebugContext(ctx, "request signed with SK-VERY-SECRET",
		"authorization", "SDK-HMAC-SHA256 Access=AK, Signature=abc",
		slog.Group("req", "body", `{"auth_sign_key":"SK-VERY-SECRET"}`),
		"status", 200, "wait", 1500*time.Millisecond)
	logger.Debug("no context: dropped")
	out := buf.String()
	if strings.Contains(out, "SK-VERY-SECRET") || strings.Contains(out, "Signature=abc") {
		t.Fatalf("secret in log output:\n%s", out)
	}
	for _, want := range []string{"request signed with", `"status":200`, `"component":"liveapi"`, `"client":"x"`, `"req.body"`, `"wait":"1.5s"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log output lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "dropped") {
		t.Errorf("a record without the tflog context was logged:\n%s", out)
	}
}

// TestSchemas checks that every schema is valid for the framework and that every
// attribute has a MarkdownDescription (the docs are generated from them).
func TestSchemas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := New("test")()
	var presp provider.SchemaResponse
	p.Schema(ctx, provider.SchemaRequest{}, &presp)
	if d := presp.Schema.ValidateImplementation(ctx); d.HasError() {
		t.Fatalf("provider schema: %v", d)
	}
	requireDescriptions(t, "provider", presp.Schema.Attributes)
	for _, f := range p.Resources(ctx) {
		var rresp resource.SchemaResponse
		f().Schema(ctx, resource.SchemaRequest{}, &rresp)
		if d := rresp.Schema.ValidateImplementation(ctx); d.HasError() {
			t.Fatalf("resource schema: %v", d)
		}
		requireDescriptions(t, "resource", rresp.Schema.Attributes)
		for name, b := range rresp.Schema.Blocks {
			if b.GetMarkdownDescription() == "" {
				t.Errorf("resource block %s has no MarkdownDescription", name)
			}
			for an, a := range b.GetNestedObject().GetAttributes() {
				if a.GetMarkdownDescription() == "" && a.GetDescription() == "" {
					t.Errorf("resource block attribute %s.%s has no description", name, an)
				}
			}
		}
	}
	for _, f := range p.DataSources(ctx) {
		var dresp datasource.SchemaResponse
		f().Schema(ctx, datasource.SchemaRequest{}, &dresp)
		if d := dresp.Schema.ValidateImplementation(ctx); d.HasError() {
			t.Fatalf("data source schema: %v", d)
		}
		requireDescriptions(t, "data source", dresp.Schema.Attributes)
	}
	eps := p.(provider.ProviderWithEphemeralResources).EphemeralResources(ctx)
	if len(eps) == 0 {
		t.Fatal("the provider has no ephemeral resources")
	}
	for _, f := range eps {
		var eresp ephemeral.SchemaResponse
		f().Schema(ctx, ephemeral.SchemaRequest{}, &eresp)
		if d := eresp.Schema.ValidateImplementation(ctx); d.HasError() {
			t.Fatalf("ephemeral resource schema: %v", d)
		}
		requireDescriptions(t, "ephemeral resource", eresp.Schema.Attributes)
	}
}

// requireDescriptions fails the test for every attribute without a MarkdownDescription: the
// generated docs are built from them.
func requireDescriptions[A interface{ GetMarkdownDescription() string }](t *testing.T, kind string, attrs map[string]A) {
	t.Helper()
	for name, a := range attrs {
		if a.GetMarkdownDescription() == "" {
			t.Errorf("%s attribute %s has no MarkdownDescription", kind, name)
		}
	}
}
