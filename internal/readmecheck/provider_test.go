package readmecheck_test

import (
	"context"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	fwprovider "github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	rschema "github.com/hashicorp/terraform-plugin-framework/resource/schema"

	"github.com/livehook/terraform-provider-livehook/internal/provider"
)

// schemas is the provider's real schema, read through the framework.
type schemas struct {
	Provider    map[string]string         // argument -> markdown description
	Resources   map[string]rschema.Schema // type name -> schema
	DataSources map[string]bool
}

var (
	schemaOnce sync.Once
	schemaVal  schemas
)

func providerSchema(t *testing.T) schemas {
	t.Helper()
	schemaOnce.Do(func() {
		ctx := context.Background()
		p := provider.New("test")()
		var meta fwprovider.MetadataResponse
		p.Metadata(ctx, fwprovider.MetadataRequest{}, &meta)
		var ps fwprovider.SchemaResponse
		p.Schema(ctx, fwprovider.SchemaRequest{}, &ps)
		s := schemas{Provider: map[string]string{}, Resources: map[string]rschema.Schema{}, DataSources: map[string]bool{}}
		for name, a := range ps.Schema.Attributes {
			s.Provider[name] = a.GetMarkdownDescription()
		}
		for _, f := range p.Resources(ctx) {
			r := f()
			var m resource.MetadataResponse
			r.Metadata(ctx, resource.MetadataRequest{ProviderTypeName: meta.TypeName}, &m)
			var rs resource.SchemaResponse
			r.Schema(ctx, resource.SchemaRequest{}, &rs)
			s.Resources[m.TypeName] = rs.Schema
		}
		for _, f := range p.DataSources(ctx) {
			var m datasource.MetadataResponse
			f().Metadata(ctx, datasource.MetadataRequest{ProviderTypeName: meta.TypeName}, &m)
			s.DataSources[m.TypeName] = true
		}
		schemaVal = s
	})
	if len(schemaVal.Provider) == 0 {
		t.Fatal("the provider reported an empty schema")
	}
	return schemaVal
}

var fallsBackRE = regexp.MustCompile("Falls back to (?:the )?`([A-Z_]+)`")

// TestProviderArgumentTable: the README's provider table lists exactly the provider's
// arguments, each with the environment variable the provider really reads.
func TestProviderArgumentTable(t *testing.T) {
	s := providerSchema(t)
	tb, err := readme.table("provider argument")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, row := range tb.Rows {
		if len(row) < 2 {
			t.Errorf("README.md:%d: row has %d cells", tb.Lines[i], len(row))
			continue
		}
		for _, arg := range codeIn(row[0]) {
			seen[arg] = true
			desc, ok := s.Provider[arg]
			if !ok {
				t.Errorf("README.md:%d: the provider has no argument %q", tb.Lines[i], arg)
				continue
			}
			if m := fallsBackRE.FindStringSubmatch(desc); m != nil && !slices.Contains(codeIn(row[1]), m[1]) {
				t.Errorf("README.md:%d: %s falls back to $%s, but the environment column says %q", tb.Lines[i], arg, m[1], row[1])
			}
			if m := fallsBackRE.FindStringSubmatch(desc); m == nil && len(codeIn(row[1])) > 0 {
				t.Errorf("README.md:%d: the environment column names %q, but %s reads no environment variable (its description says none)", tb.Lines[i], row[1], arg)
			}
		}
	}
	for _, a := range slices.Sorted(maps.Keys(s.Provider)) {
		if !seen[a] {
			t.Errorf("README.md:%d: the provider argument table lacks %q", tb.Lines[0]-2, a)
		}
	}
}

// TestResourceParagraph: the prose reference of the resource names every argument and block
// of the real schema, and the resource and data source exist.
func TestResourceParagraph(t *testing.T) {
	s := providerSchema(t)
	const intro = "Resource `"
	para, line, err := readme.paragraph("The Terraform provider", intro)
	if err != nil {
		t.Fatal(err)
	}
	spans := codeIn(para)
	typ := spans[0]
	rs, ok := s.Resources[typ]
	if !ok {
		t.Fatalf("README.md:%d: the provider has no resource %q (it has %v)", line, typ, slices.Sorted(maps.Keys(s.Resources)))
	}
	text := strings.Join(spans, " ")
	words := map[string]bool{}
	for _, w := range strings.Fields(strings.NewReplacer("{", " ", "}", " ").Replace(text)) {
		words[w] = true
	}
	for name, a := range rs.Attributes {
		if a.IsComputed() && !a.IsOptional() && !a.IsRequired() {
			continue // id: nothing to configure
		}
		if !words[name] {
			t.Errorf("README.md:%d: the resource paragraph does not mention argument `%s`", line, name)
		}
	}
	for name, b := range rs.Blocks {
		if !words[name] {
			t.Errorf("README.md:%d: the resource paragraph does not mention block `%s`", line, name)
		}
		for sub := range b.GetNestedObject().GetAttributes() {
			if !words[sub] {
				t.Errorf("README.md:%d: the resource paragraph's `%s { ... }` lacks %q", line, name, sub)
			}
		}
	}
	if m := regexp.MustCompile("data source `([a-z_]+)`").FindStringSubmatch(para); m == nil {
		t.Errorf("README.md:%d: the paragraph no longer names the data source", line)
	} else if !s.DataSources[m[1]] {
		t.Errorf("README.md:%d: the provider has no data source %q", line, m[1])
	}
}
