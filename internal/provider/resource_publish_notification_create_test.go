package provider

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
)

// objectOf builds a value of the object type typ: the given attributes, every other one null.
func objectOf(t *testing.T, typ tftypes.Type, vals map[string]any) tftypes.Value {
	t.Helper()
	obj, ok := typ.(tftypes.Object)
	if !ok {
		t.Fatalf("test bug: %s is not an object type", typ)
	}
	raw := map[string]tftypes.Value{}
	for name, at := range obj.AttributeTypes {
		raw[name] = tftypes.NewValue(at, vals[name]) // nil: null
	}
	for name := range vals {
		if _, ok := obj.AttributeTypes[name]; !ok {
			t.Fatalf("test bug: no attribute %q", name)
		}
	}
	return tftypes.NewValue(typ, raw)
}

func dynamicValue(t *testing.T, typ tftypes.Type, v tftypes.Value) *tfprotov6.DynamicValue {
	t.Helper()
	dv, err := tfprotov6.NewDynamicValue(typ, v)
	if err != nil {
		t.Fatal(err)
	}
	return &dv
}

// protocolHarness is the provider behind its protocol server, configured against a real
// emulator: what terraform talks to, without terraform.
type protocolHarness struct {
	live *emulator.Server
	srv  tfprotov6.ProviderServer
	rt   tftypes.Type // the resource's object type
}

func newProtocolHarness(t *testing.T) *protocolHarness {
	t.Helper()
	live, base := emulator.StartT(t, emulator.Config{
		ProjectID: testProjectID, AccessKey: testAccessKey, SecretKey: testSecretKey,
		Domains: []string{testDomain}, Logger: slog.New(slog.DiscardHandler),
	})
	ctx := context.Background()
	srv, err := providerserver.NewProtocol6WithError(New("test")())()
	if err != nil {
		t.Fatal(err)
	}
	schemas, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	pt := schemas.Provider.ValueType()
	conf, err := srv.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{
		TerraformVersion: "1.11.4",
		Config: dynamicValue(t, pt, objectOf(t, pt, map[string]any{
			"endpoint": base, "project_id": testProjectID, "access_key": testAccessKey, "secret_key": testSecretKey,
		})),
	})
	if err != nil || len(conf.Diagnostics) > 0 {
		t.Fatalf("ConfigureProvider: %v %v", err, conf.Diagnostics)
	}
	return &protocolHarness{live: live, srv: srv, rt: schemas.ResourceSchemas["livehook_publish_notification"].ValueType()}
}

// create returns the config and the planned state of a create of testDomain with url.
func (h *protocolHarness) create(t *testing.T, url string) (config, planned tftypes.Value) {
	t.Helper()
	attrs := map[string]any{"domain": testDomain, "url": url}
	planned, err := tftypes.Transform(objectOf(t, h.rt, attrs), func(p *tftypes.AttributePath, v tftypes.Value) (tftypes.Value, error) {
		if p.Equal(tftypes.NewAttributePath().WithAttributeName("id")) {
			return tftypes.NewValue(tftypes.String, tftypes.UnknownValue), nil // computed: unknown in a create's plan
		}
		return v, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return objectOf(t, h.rt, attrs), planned
}

func (h *protocolHarness) plan(t *testing.T, config, proposed tftypes.Value) *tfprotov6.PlanResourceChangeResponse {
	t.Helper()
	resp, err := h.srv.PlanResourceChange(context.Background(), &tfprotov6.PlanResourceChangeRequest{
		TypeName:         "livehook_publish_notification",
		PriorState:       dynamicValue(t, h.rt, tftypes.NewValue(h.rt, nil)),
		ProposedNewState: dynamicValue(t, h.rt, proposed),
		Config:           dynamicValue(t, h.rt, config),
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (h *protocolHarness) apply(t *testing.T, config, planned tftypes.Value) *tfprotov6.ApplyResourceChangeResponse {
	t.Helper()
	resp, err := h.srv.ApplyResourceChange(context.Background(), &tfprotov6.ApplyResourceChangeRequest{
		TypeName:     "livehook_publish_notification",
		PriorState:   dynamicValue(t, h.rt, tftypes.NewValue(h.rt, nil)),
		PlannedState: dynamicValue(t, h.rt, planned),
		Config:       dynamicValue(t, h.rt, config),
	})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func hasImportHint(diags []*tfprotov6.Diagnostic) bool {
	for _, d := range diags {
		if d.Severity == tfprotov6.DiagnosticSeverityError && d.Summary == "Publish notification already exists" &&
			strings.Contains(d.Detail, "terraform import livehook_publish_notification.<name> push.example.com") {
			return true
		}
	}
	return false
}

// TestCreateRefusesExistingConfig: Create keeps its own check for a config that appears
// after the last plan (Terraform plans again during apply, and ModifyPlan refuses it there
// too, so only a call of ApplyResourceChange itself shows Create's check).
func TestCreateRefusesExistingConfig(t *testing.T) {
	t.Parallel()
	h := newProtocolHarness(t)
	existing := emulator.Notification{URL: "https://legacy.example.com/hook", AuthSignKey: key1}
	if err := h.live.SetConfig(testDomain, existing); err != nil {
		t.Fatal(err)
	}
	config, planned := h.create(t, "https://hooks.example.com/new")
	if resp := h.apply(t, config, planned); !hasImportHint(resp.Diagnostics) {
		t.Fatalf("ApplyResourceChange (create) over an existing config: want the import hint, got %+v", resp.Diagnostics)
	}
	if got, _ := h.live.Config(testDomain); got != existing {
		t.Fatalf("the existing config was overwritten: %+v", got)
	}
}

// TestCreateAfterApplyTimePlan: the plan of a create refuses an existing config with the
// import hint; a plan that found none hands its check on to the Create that follows at once
// (one GET and one PUT in all, not two GETs), which is what Terraform does during apply.
func TestCreateAfterApplyTimePlan(t *testing.T) {
	t.Parallel()
	h := newProtocolHarness(t)
	config, planned := h.create(t, "https://hooks.example.com/new")

	if err := h.live.SetConfig(testDomain, emulator.Notification{URL: "https://legacy.example.com/hook"}); err != nil {
		t.Fatal(err)
	}
	if resp := h.plan(t, config, planned); !hasImportHint(resp.Diagnostics) {
		t.Fatalf("PlanResourceChange (create) over an existing config: want the import hint, got %+v", resp.Diagnostics)
	}
	h.live.DeleteConfig(testDomain)

	before := h.live.Stats().Requests
	if resp := h.plan(t, config, planned); len(resp.Diagnostics) > 0 {
		t.Fatalf("PlanResourceChange: %+v", resp.Diagnostics)
	}
	if resp := h.apply(t, config, planned); len(resp.Diagnostics) > 0 {
		t.Fatalf("ApplyResourceChange: %+v", resp.Diagnostics)
	}
	if n := h.live.Stats().Requests - before; n != 2 {
		t.Errorf("plan + create made %d Live API requests, want 2 (the plan's GET, the PUT)", n)
	}
	if got, ok := h.live.Config(testDomain); !ok || got.URL != "https://hooks.example.com/new" {
		t.Fatalf("not created: %+v", got)
	}
}

// TestJustCheckedAbsent: a takeover check counts for one Create, and only while it is recent.
func TestJustCheckedAbsent(t *testing.T) {
	t.Parallel()
	d := &providerData{}
	if d.justCheckedAbsent("a.example.com") {
		t.Error("a domain never checked counts as checked")
	}
	d.noteAbsent("a.example.com")
	if !d.justCheckedAbsent("a.example.com") {
		t.Error("a check just made does not count")
	}
	if d.justCheckedAbsent("a.example.com") {
		t.Error("one check counted for two creates")
	}
	d.absent.Store("b.example.com", time.Now().Add(-justChecked-time.Second))
	if d.justCheckedAbsent("b.example.com") {
		t.Error("a stale check counts")
	}
}
