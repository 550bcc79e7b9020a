package provider

import (
	"context"
	"log/slog"
	"strings"
	"testing"

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

// TestCreateRefusesExistingConfig: Create keeps its own check for a config that appears
// after the last plan (Terraform plans again during apply, and ModifyPlan refuses it there
// too, so only a call of ApplyResourceChange itself shows Create's check). The provider runs
// behind its protocol server against the real emulator; no terraform needed.
func TestCreateRefusesExistingConfig(t *testing.T) {
	t.Parallel()
	live, base := emulator.StartT(t, emulator.Config{
		ProjectID: testProjectID, AccessKey: testAccessKey, SecretKey: testSecretKey,
		Domains: []string{testDomain}, Logger: slog.New(slog.DiscardHandler),
	})
	existing := emulator.Notification{URL: "https://legacy.example.com/hook", AuthSignKey: key1}
	if err := live.SetConfig(testDomain, existing); err != nil {
		t.Fatal(err)
	}

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

	rt := schemas.ResourceSchemas["livehook_publish_notification"].ValueType()
	attrs := map[string]any{"domain": testDomain, "url": "https://hooks.example.com/new"}
	planned := objectOf(t, rt, attrs)
	planned, err = tftypes.Transform(planned, func(p *tftypes.AttributePath, v tftypes.Value) (tftypes.Value, error) {
		if p.Equal(tftypes.NewAttributePath().WithAttributeName("id")) {
			return tftypes.NewValue(tftypes.String, tftypes.UnknownValue), nil // computed: unknown in a create's plan
		}
		return v, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.ApplyResourceChange(ctx, &tfprotov6.ApplyResourceChangeRequest{
		TypeName:     "livehook_publish_notification",
		PriorState:   dynamicValue(t, rt, tftypes.NewValue(rt, nil)),
		PlannedState: dynamicValue(t, rt, planned),
		Config:       dynamicValue(t, rt, objectOf(t, rt, attrs)),
	})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, d := range resp.Diagnostics {
		if d.Severity == tfprotov6.DiagnosticSeverityError && d.Summary == "Publish notification already exists" &&
			strings.Contains(d.Detail, "terraform import livehook_publish_notification.<name> push.example.com") {
			found = true
		}
	}
	if !found {
		t.Fatalf("ApplyResourceChange (create) over an existing config: want the import hint, got %+v", resp.Diagnostics)
	}
	if got, _ := live.Config(testDomain); got != existing {
		t.Fatalf("the existing config was overwritten: %+v", got)
	}
}
