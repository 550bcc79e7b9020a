package monitoring_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/livehook/terraform-provider-livehook/archiver/metrics"
	"github.com/livehook/terraform-provider-livehook/archiver/server"
	"github.com/livehook/terraform-provider-livehook/internal/testenv"
)

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T, path string) ruleFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f
}

func promtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(testenv.Tool(t, "promtool"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestRulesCheck: promtool check rules accepts the alert and recording rules (syntax, PromQL,
// templates, duplicate names).
func TestRulesCheck(t *testing.T) {
	t.Parallel()
	promtool(t, "check", "rules", "alerts.yaml", "rules.yaml")
}

// TestRulesUnitTests: promtool test rules runs the synthetic series of tests/alerts_test.yaml:
// every alert is quiet at first and fires with its labels and annotations when it should.
func TestRulesUnitTests(t *testing.T) {
	t.Parallel()
	promtool(t, "test", "rules", "tests/alerts_test.yaml")
}

// TestEveryAlertTestedAndLinked: every alert has a severity, a summary, a description and a
// runbook_url whose anchor is a heading of docs/guides/runbooks.md, and a promtool test that
// expects it to fire.
func TestEveryAlertTestedAndLinked(t *testing.T) {
	t.Parallel()
	const base = "https://github.com/livehook/terraform-provider-livehook/blob/main/docs/guides/runbooks.md#"
	runbooks, err := os.ReadFile("../docs/guides/runbooks.md")
	if err != nil {
		t.Fatalf("the runbooks alerts link to: %v", err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(runbooks), "\n") {
		if h, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") {
			anchors[githubAnchor(h)] = true
		}
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	b, err := os.ReadFile("tests/alerts_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range readRules(t, "alerts.yaml").Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, k := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[k] == "" {
					t.Errorf("%s: no %s annotation", r.Alert, k)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], base)
			if !ok || !anchors[anchor] {
				t.Errorf("%s: runbook_url %q is not %s<a heading of docs/guides/runbooks.md>", r.Alert, r.Annotations["runbook_url"], base)
			}
			if !fires[r.Alert] {
				t.Errorf("%s: no test in tests/alerts_test.yaml expects it to fire", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alerts in alerts.yaml")
	}
}

// githubAnchor is the anchor GitHub gives a Markdown heading.
func githubAnchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	paths, _ := filepath.Glob("dashboards/*.json")
	if len(paths) == 0 {
		t.Fatal("no dashboards")
	}
	exprs := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, pn := range d.Panels {
			if len(pn.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", p, pn.Title)
			}
			for i, tg := range pn.Targets {
				exprs[fmt.Sprintf("%s: %s #%d", filepath.Base(p), pn.Title, i)] = tg.Expr
			}
		}
	}
	return exprs
}

// TestDashboardQueriesParse: every dashboard query is valid PromQL. promtool parses them as the
// expressions of recording rules (Grafana's $job is a plain string inside a matcher).
func TestDashboardQueriesParse(t *testing.T) {
	t.Parallel()
	exprs := dashboardExprs(t)
	var rf strings.Builder
	rf.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	i := 0
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range exprs {
			if !yield(k) {
				return
			}
		}
	}) {
		b, _ := json.Marshal(exprs[name]) // a JSON string is a YAML string
		fmt.Fprintf(&rf, "      - record: dashboard:query_%d # %s\n        expr: %s\n", i, strings.ReplaceAll(name, "\n", " "), b)
		i++
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(path, []byte(rf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	promtool(t, "check", "rules", path)
}

// metricName finds metric names, not the livehook:... recording rules that contain them.
var metricName = regexp.MustCompile(`(?:^|[^:\w])((?:livehook_archiver|archiver_forward|go|process)_[a-z0-9_]+)`)

// TestMetricsExist: every livehook_archiver_*, archiver_forward_*, go_* and process_* metric the
// alerts, rules and dashboards read is one the archiver exposes (a renamed metric would leave an
// alert silent forever). The relay's labelled counters appear with their first event, so those
// not yet exposed must be registered by archiver/relay (their name in its source).
func TestMetricsExist(t *testing.T) {
	t.Parallel()
	c := server.DefaultConfig()
	c.Listen, c.AdminListen = "127.0.0.1:0", "127.0.0.1:0"
	c.Store, c.Spool = "file://"+t.TempDir(), t.TempDir()
	c.AllowUnsigned = true
	c.TLSCert = "" // the certificate gauge is registered with --tls-cert; its name is checked below
	c.Logger = slog.New(slog.DiscardHandler)
	s, err := server.New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	fams, err := metrics.Scrape(context.Background(), s.AdminURL()+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	exposed := map[string]bool{"livehook_archiver_tls_cert_not_after_timestamp_seconds": true} // with --tls-cert only (archiver/server tests)
	for name := range fams {
		exposed[name] = true
	}
	var sources []string
	for _, p := range []string{"alerts.yaml", "rules.yaml"} {
		for _, g := range readRules(t, p).Groups {
			for _, r := range g.Rules {
				sources = append(sources, r.Expr)
			}
		}
	}
	for _, e := range dashboardExprs(t) {
		sources = append(sources, e)
	}
	relaySrc, err := os.ReadFile("../archiver/relay/metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range sources {
		for _, sm := range metricName.FindAllStringSubmatch(src, -1) {
			m := sm[1]
			base := m
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(m, suf); ok && exposed[b] {
					base = b
				}
			}
			if !exposed[base] && strings.HasPrefix(base, "archiver_forward_") && strings.Contains(string(relaySrc), `"`+base+`"`) {
				continue
			}
			if !exposed[base] {
				t.Errorf("%s is read by %q but the archiver does not expose it", m, src)
			}
		}
	}
}
