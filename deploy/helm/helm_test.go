// Package helm holds the archiver's Helm chart (livehook-archiver/); its tests run helm lint
// --strict and helm template with every values example in livehook-archiver/ci/ and check what
// the manifests say against the archiver itself.
package helm_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/livehook/terraform-provider-livehook/archiver/server"
	"github.com/livehook/terraform-provider-livehook/internal/testenv"
)

const chart = "livehook-archiver"

func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(testenv.Tool(t, "helm"), args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String() + errb.String(), err
	}
	return out.String(), nil
}

func examples(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(chart, "ci", "*-values.yaml"))
	if len(files) < 3 {
		t.Fatalf("values examples: %v", files)
	}
	return files
}

// TestLint: helm lint --strict passes with every values example.
func TestLint(t *testing.T) {
	t.Parallel()
	for _, f := range examples(t) {
		if out, err := helm(t, "lint", "--strict", chart, "-f", f); err != nil {
			t.Errorf("helm lint --strict -f %s: %v\n%s", f, err, out)
		}
	}
}

type object map[string]any

func (o object) get(path ...string) any {
	var v any = map[string]any(o)
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func (o object) str(path ...string) string { s, _ := o.get(path...).(string); return s }

func list(v any) []object {
	var out []object
	items, _ := v.([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			out = append(out, object(m))
		}
	}
	return out
}

func render(t *testing.T, args ...string) []object {
	t.Helper()
	out, err := helm(t, append([]string{"template", "t", chart}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, out)
	}
	var objs []object
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var o map[string]any
		err := dec.Decode(&o)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%v: rendered YAML: %v", args, err)
		}
		if o != nil {
			objs = append(objs, object(o))
		}
	}
	return objs
}

func memBytes(t *testing.T, s string) int64 {
	t.Helper()
	for u, m := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
		if n, ok := strings.CutSuffix(s, u); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v * m
		}
	}
	t.Fatalf("memory %q", s)
	return 0
}

// TestTemplate: every values example renders one archiver workload whose flags `archiver serve`
// accepts, that verifies signatures, keeps /metrics and /readyz on the admin port (probes and
// ServiceMonitor there, not on the callback Service), sets GOMEMLIMIT from the memory limit and
// gives SIGTERM longer than --shutdown-timeout; a StatefulSet's serviceName is a rendered headless
// Service; relay destinations become the --forward-config file.
func TestTemplate(t *testing.T) {
	t.Parallel()
	for _, f := range examples(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			objs := render(t, "-f", f)
			byKind := map[string][]object{}
			for _, o := range objs {
				byKind[o.str("kind")] = append(byKind[o.str("kind")], o)
			}
			workloads := append(byKind["StatefulSet"], byKind["Deployment"]...)
			if len(workloads) != 1 {
				t.Fatalf("%d workloads, want 1", len(workloads))
			}
			w := workloads[0]
			spec := object(w.get("spec", "template", "spec").(map[string]any))
			var c object
			for _, ct := range list(spec.get("containers")) {
				if ct.str("name") == "archiver" {
					c = ct
				}
			}
			if c == nil {
				t.Fatal("no archiver container")
			}
			var args []string
			for _, a := range c.get("args").([]any) {
				args = append(args, a.(string))
			}
			// The rendered --forward-config file, parsed by the archiver itself.
			for _, cm := range byKind["ConfigMap"] {
				if fc := cm.str("data", "forward.yaml"); fc != "" {
					path := filepath.Join(t.TempDir(), "forward.yaml")
					if err := os.WriteFile(path, []byte(fc), 0o600); err != nil {
						t.Fatal(err)
					}
					for i, a := range args {
						if strings.HasPrefix(a, "--forward-config=") {
							args[i] = "--forward-config=" + path
						}
					}
				}
			}
			cfg, err := server.ParseFlags(args, io.Discard)
			if err != nil {
				t.Fatalf("archiver serve %v: %v", args, err)
			}
			if cfg.Keys == "" || cfg.AllowUnsigned {
				t.Errorf("keys %q, allow-unsigned %v: want signed callbacks only", cfg.Keys, cfg.AllowUnsigned)
			}
			if cfg.AdminListen == "" {
				t.Error("no --admin-listen: /metrics would be on the callback port")
			}
			if (w.str("kind") == "StatefulSet") != (cfg.Ack == server.AckSpool) {
				t.Errorf("%s with --ack %s", w.str("kind"), cfg.Ack)
			}
			for _, probe := range []string{"readinessProbe", "livenessProbe"} {
				if p := c.str(probe, "httpGet", "port"); p != "admin" {
					t.Errorf("%s on port %q, want admin", probe, p)
				}
			}
			limit := memBytes(t, c.str("resources", "limits", "memory"))
			gomem := ""
			for _, e := range list(c.get("env")) {
				if e.str("name") == "GOMEMLIMIT" {
					gomem = e.str("value")
				}
			}
			if n, _ := strconv.ParseInt(gomem, 10, 64); n != limit*80/100 {
				t.Errorf("GOMEMLIMIT %q, want 80%% of the limit %d", gomem, limit)
			}
			grace, _ := spec.get("terminationGracePeriodSeconds").(int)
			if float64(grace) <= cfg.ShutdownTimeout.Seconds() {
				t.Errorf("terminationGracePeriodSeconds %d <= --shutdown-timeout %s", grace, cfg.ShutdownTimeout)
			}
			services := map[string]object{}
			for _, s := range byKind["Service"] {
				services[s.str("metadata", "name")] = s
				for _, p := range list(s.get("spec", "ports")) {
					if p.str("targetPort") == "admin" && s.str("spec", "type") != "ClusterIP" {
						t.Errorf("service %s exposes the admin port as %s", s.str("metadata", "name"), s.str("spec", "type"))
					}
				}
			}
			if w.str("kind") == "StatefulSet" {
				hs, ok := services[w.str("spec", "serviceName")]
				if !ok || hs.str("spec", "clusterIP") != "None" {
					t.Errorf("StatefulSet serviceName %q is not a rendered headless Service", w.str("spec", "serviceName"))
				}
			}
			for _, sm := range byKind["ServiceMonitor"] {
				for _, ep := range list(sm.get("spec", "endpoints")) {
					if ep.str("port") != "admin" {
						t.Errorf("ServiceMonitor scrapes port %q, want admin", ep.str("port"))
					}
				}
			}
			if len(byKind["NetworkPolicy"]) != 1 || len(byKind["PodDisruptionBudget"]) != 1 {
				t.Errorf("%d NetworkPolicies, %d PodDisruptionBudgets, want 1 each", len(byKind["NetworkPolicy"]), len(byKind["PodDisruptionBudget"]))
			}
			for _, cm := range byKind["ConfigMap"] {
				var fc struct {
					Destinations []struct{ Name, URL string } `yaml:"destinations"`
				}
				if err := yaml.Unmarshal([]byte(cm.str("data", "forward.yaml")), &fc); err != nil || len(fc.Destinations) == 0 || fc.Destinations[0].URL == "" {
					t.Errorf("relay forward.yaml: %v %+v", err, fc)
				}
			}
		})
	}
}

// TestTemplateRefusals: values that would make a broken or insecure archiver fail to render, with
// a message that says what to set.
func TestTemplateRefusals(t *testing.T) {
	t.Parallel()
	base := []string{"--set", "store.url=s3://b/p", "--set", "keys.existingSecret=k"}
	for _, tc := range []struct {
		set  []string
		want string
	}{
		{[]string{"--set", "store.url=s3://b/p"}, "keys.existingSecret is required"},
		{[]string{"--set", "keys.existingSecret=k"}, "store.url is required"},
		{append(base, "--set", "mode=fast"), `mode "fast"`},
		{append(base, "--set", "store.url=b/p"), "want s3://BUCKET/PREFIX"},
		{append(base, "--set", "resources.limits.memory=lots"), "give it in bytes or with a suffix"},
		{append(base, "--set", "resources.limits.memory=100m"), "give it in bytes or with a suffix"}, // millibytes
		{append(base, "--set", "resources.limits.memory=1e9"), "give it in bytes or with a suffix"},
		{append(base, "--set", "resources.limits.memory=0"), "want more than 0 bytes and less than 8Ei"},
		{append(base, "--set", "resources.limits.memory=8Ei"), "want more than 0 bytes and less than 8Ei"},
		{append(base, "--set", "cronJob.enabled=true"), "cronJob.enabled needs digest.existingSecret"},
		{append(base, "--set", "relay.destinations[0].name=Biz", "--set", "relay.destinations[0].url=https://x"), "use [a-z0-9-]+"},
		{append(base, "--set", "mode=store", "--set", "relay.destinations[0].name=biz", "--set", "relay.destinations[0].url=https://x"), "relay.destinations needs mode spool"},
	} {
		out, err := helm(t, append([]string{"template", "t", chart}, tc.set...)...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("helm template %v: err %v, want an error containing %q:\n%s", tc.set, err, tc.want, out)
		}
	}
}

// TestTemplateMemorySizes: GOMEMLIMIT is memoryLimitPercent of limits.memory for every way
// Kubernetes writes a size: binary and decimal suffixes, a fraction, plain bytes as a number (from
// --set or a values file) or as a string.
func TestTemplateMemorySizes(t *testing.T) {
	t.Parallel()
	values := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(values, []byte("resources:\n  limits: { memory: 268435456 }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--set", "store.url=s3://b/p", "--set", "keys.existingSecret=k"}
	for _, tc := range []struct {
		set  []string
		want int64
	}{
		{[]string{"--set", "resources.limits.memory=256Mi"}, 256 << 20 * 80 / 100},
		{[]string{"--set", "resources.limits.memory=1Gi"}, 1 << 30 * 80 / 100},
		{[]string{"--set", "resources.limits.memory=1.5Gi"}, 3 << 29 * 80 / 100},
		{[]string{"--set", "resources.limits.memory=1G"}, 800_000_000},
		{[]string{"--set", "resources.limits.memory=512M"}, 409_600_000},
		{[]string{"--set", "resources.limits.memory=1.1G"}, 880_000_000},
		{[]string{"--set", "resources.limits.memory=100k"}, 80_000},
		{[]string{"--set", "resources.limits.memory=1.5"}, 1}, // 2 bytes: a fraction of a byte rounds up
		{[]string{"--set", "resources.limits.memory=268435456"}, 268435456 * 80 / 100},
		{[]string{"--set-string", "resources.limits.memory=268435456"}, 268435456 * 80 / 100},
		{[]string{"-f", values}, 268435456 * 80 / 100},
		{[]string{"--set", "resources.limits.memory=1G", "--set", "memoryLimitPercent=90"}, 900_000_000},
	} {
		gomem := ""
		for _, o := range render(t, append(base, tc.set...)...) {
			if o.str("kind") != "StatefulSet" {
				continue
			}
			for _, c := range list(o.get("spec", "template", "spec", "containers")) {
				for _, e := range list(c.get("env")) {
					if c.str("name") == "archiver" && e.str("name") == "GOMEMLIMIT" {
						gomem = e.str("value")
					}
				}
			}
		}
		if gomem != strconv.FormatInt(tc.want, 10) {
			t.Errorf("helm template %v: GOMEMLIMIT %q, want %d", tc.set, gomem, tc.want)
		}
	}
}
