package metrics

import (
	"net/http"
	"net/http/httptest"

	"bytes"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"strings"
	"testing"
)

func TestExposition(t *testing.T) {
	m := NewArchiver([]string{"b", "a"})
	m.Received.Add(3)
	m.Rejected.With("a").Inc()
	m.Rejected.With("new").Inc()
	m.UploadSeconds.Observe(0.003)
	m.UploadSeconds.Observe(7)
	m.Registry.GaugeFunc("g", "A gauge.", func() float64 { return 1.5 })
	var buf bytes.Buffer
	if _, err := m.Registry.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"# TYPE livehook_archiver_received_total counter\nlivehook_archiver_received_total 3\n",
		`livehook_archiver_rejected_total{reason="a"} 1` + "\n" + `livehook_archiver_rejected_total{reason="b"} 0` + "\n" + `livehook_archiver_rejected_total{reason="new"} 1`,
		`livehook_archiver_upload_seconds_bucket{le="0.005"} 1`,
		`livehook_archiver_upload_seconds_bucket{le="5"} 1`,
		`livehook_archiver_upload_seconds_bucket{le="10"} 2`,
		`livehook_archiver_upload_seconds_bucket{le="+Inf"} 2`,
		"livehook_archiver_upload_seconds_sum 7.003\nlivehook_archiver_upload_seconds_count 2\n",
		"# TYPE g gauge\ng 1.5\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q:\n%s", want, out)
		}
	}
}

// TestStandardCollectorsAndEscaping: the exposition carries the Go runtime and process metrics,
// and a label value with a quote, a backslash and a newline is escaped so a scraper can parse it.
func TestStandardCollectorsAndEscaping(t *testing.T) {
	m := NewArchiver(nil)
	m.Rejected.With("a\"b\\c\nd").Inc()
	rec := httptest.NewRecorder()
	m.Registry.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{"go_goroutines ", "process_cpu_seconds_total ", `livehook_archiver_rejected_total{reason="a\"b\\c\nd"} 1`} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q:\n%s", want, out)
		}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(out))
	if err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	if got := fams["livehook_archiver_rejected_total"].GetMetric()[0].GetLabel()[0].GetValue(); got != "a\"b\\c\nd" {
		t.Errorf("label value after a round trip = %q", got)
	}
	if got := m.Rejected.With("a\"b\\c\nd").Value(); got != 1 {
		t.Errorf("Value() = %d, want 1", got)
	}
}
