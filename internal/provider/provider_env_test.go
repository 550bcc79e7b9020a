package provider

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// TestConfigureNothingSetDefersErrors: a configuration that only calls provider functions
// sets no credentials; Configure must succeed and the first resource or data source must get
// the errors, naming every variable to set.
func TestConfigureNothingSetDefersErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		vals map[string]any
		env  map[string]string
	}{
		{"empty block, empty environment", nil, map[string]string{}},
		{"empty strings in the block", map[string]any{"access_key": "", "region": ""}, map[string]string{}},
		{"only limits set", map[string]any{"max_retries": int64(2)}, map[string]string{EnvRequestsPerSecond: "3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, _ := configure(t, tc.vals, tc.env)
			if resp.Diagnostics.HasError() {
				t.Fatalf("Configure failed although nothing needs the client: %v", resp.Diagnostics)
			}
			var diags diag.Diagnostics
			if d := providerDataFrom(resp.ResourceData, &diags); d != nil {
				t.Fatalf("resource got provider data %#v, want none", d)
			}
			if resp.DataSourceData != resp.ResourceData {
				t.Fatalf("data sources and resources got different provider data")
			}
			if !diags.HasError() {
				t.Fatal("a resource got no error from an unconfigured provider")
			}
			msg := diags.Errors()[0].Summary() + ": " + diags.Errors()[0].Detail()
			for _, want := range []string{"not configured", EnvAccessKey, EnvSecretKey, EnvProjectID, EnvRegion, EnvEndpoint} {
				if !strings.Contains(msg, want) {
					t.Errorf("resource error %q does not mention %q", msg, want)
				}
			}
		})
	}
}

// TestConfigureLimitsFromEnvironment: max_retries and requests_per_second fall back to
// LIVEHOOK_MAX_RETRIES and LIVEHOOK_REQUESTS_PER_SECOND; the block wins; bad values are
// diagnosed on the attribute, naming the variable.
func TestConfigureLimitsFromEnvironment(t *testing.T) {
	t.Parallel()
	creds := func(extra map[string]string) map[string]string {
		m := map[string]string{EnvEndpoint: "http://127.0.0.1:1", EnvProjectID: "p", EnvAccessKey: "a", EnvSecretKey: "s"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name        string
		vals        map[string]any
		env         map[string]string
		wantRetries int     // liveapi convention: 0 default, -1 none
		wantRPS     float64 //
		wantErr     map[string][]string
	}{
		{name: "unset", env: creds(nil), wantRetries: 0, wantRPS: 0},
		{name: "from the environment", env: creds(map[string]string{EnvMaxRetries: "3", EnvRequestsPerSecond: "2.5"}), wantRetries: 3, wantRPS: 2.5},
		{name: "zero retries from the environment disables retries", env: creds(map[string]string{EnvMaxRetries: " 0 "}), wantRetries: -1},
		{name: "block wins over the environment",
			vals: map[string]any{"max_retries": int64(1), "requests_per_second": float64(7)},
			env:  creds(map[string]string{EnvMaxRetries: "9", EnvRequestsPerSecond: "0.5"}), wantRetries: 1, wantRPS: 7},
		{name: "zero in the block disables retries despite the environment",
			vals: map[string]any{"max_retries": int64(0)}, env: creds(map[string]string{EnvMaxRetries: "9"}), wantRetries: -1},
		{name: "retries not a number", env: creds(map[string]string{EnvMaxRetries: "three"}),
			wantErr: map[string][]string{"max_retries": {EnvMaxRetries, `"three"`, "0 (no retries) to 50"}}},
		{name: "retries negative", env: creds(map[string]string{EnvMaxRetries: "-1"}),
			wantErr: map[string][]string{"max_retries": {EnvMaxRetries, `"-1"`}}},
		{name: "retries above the limit", env: creds(map[string]string{EnvMaxRetries: "51"}),
			wantErr: map[string][]string{"max_retries": {EnvMaxRetries, `"51"`}}},
		{name: "rate negative", env: creds(map[string]string{EnvRequestsPerSecond: "-2"}),
			wantErr: map[string][]string{"requests_per_second": {EnvRequestsPerSecond, `"-2"`}}},
		{name: "rate NaN", env: creds(map[string]string{EnvRequestsPerSecond: "NaN"}),
			wantErr: map[string][]string{"requests_per_second": {EnvRequestsPerSecond}}},
		{name: "rate infinite", env: creds(map[string]string{EnvRequestsPerSecond: "+Inf"}),
			wantErr: map[string][]string{"requests_per_second": {EnvRequestsPerSecond}}},
		{name: "rate with a unit", env: creds(map[string]string{EnvRequestsPerSecond: "5/s"}),
			wantErr: map[string][]string{"requests_per_second": {EnvRequestsPerSecond, `"5/s"`}}},
		{name: "both bad", env: creds(map[string]string{EnvMaxRetries: "x", EnvRequestsPerSecond: "y"}),
			wantErr: map[string][]string{"max_retries": {EnvMaxRetries}, "requests_per_second": {EnvRequestsPerSecond}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, p := configure(t, tc.vals, tc.env)
			got := attrErrors(t, resp.Diagnostics)
			if len(got) != len(tc.wantErr) {
				t.Fatalf("errors %v, want errors on %v", got, keys(tc.wantErr))
			}
			for attr, subs := range tc.wantErr {
				for _, s := range subs {
					if !strings.Contains(got[attr], s) {
						t.Errorf("error on %s = %q, want it to contain %q", attr, got[attr], s)
					}
				}
			}
			if len(tc.wantErr) > 0 {
				return
			}
			var m providerModel
			m.MaxRetries = types.Int64Null()
			m.RequestsPerSecond = types.Float64Null()
			if v, ok := tc.vals["max_retries"]; ok {
				m.MaxRetries = types.Int64Value(v.(int64))
			}
			if v, ok := tc.vals["requests_per_second"]; ok {
				m.RequestsPerSecond = types.Float64Value(v.(float64))
			}
			retries, rps := p.clientLimits(m, &provider.ConfigureResponse{})
			if retries != tc.wantRetries || rps != tc.wantRPS {
				t.Errorf("limits = (%d, %v), want (%d, %v)", retries, rps, tc.wantRetries, tc.wantRPS)
			}
		})
	}
}

// TestMaxRetriesFromEnvironmentReachesTheClient: the client Configure builds retries as many
// times as LIVEHOOK_MAX_RETRIES says.
func TestMaxRetriesFromEnvironmentReachesTheClient(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  string
		want int64 // requests for one Get against an always-503 server
	}{{"0", 1}, {"2", 3}} {
		t.Run(EnvMaxRetries+"="+tc.env, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				n.Add(1)
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			defer srv.Close()
			resp, _ := configure(t, nil, map[string]string{EnvEndpoint: srv.URL, EnvProjectID: "p", EnvAccessKey: "a", EnvSecretKey: "s", EnvMaxRetries: tc.env})
			if resp.Diagnostics.HasError() {
				t.Fatal(resp.Diagnostics)
			}
			d := resp.ResourceData.(*providerData)
			if _, err := d.client.Get(context.Background(), "push.example.com"); err == nil {
				t.Fatal("Get against an always-503 server succeeded")
			}
			if got := n.Load(); got != tc.want {
				t.Errorf("%d requests, want %d", got, tc.want)
			}
		})
	}
}
