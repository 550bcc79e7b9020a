package relay

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/net/http/httpguts"

	"github.com/livehook/terraform-provider-livehook/archiver/intake"
	"github.com/livehook/terraform-provider-livehook/internal/callback"
)

// Defaults of a destination's options.
const (
	DefaultTimeout = 5 * time.Second
	DefaultMaxAge  = 24 * time.Hour
)

// Destination is one receiver the relay forwards callbacks to (--forward, --forward-config).
type Destination struct {
	Name    string            `yaml:"name"`
	URL     string            `yaml:"url"`
	Domains []string          `yaml:"domains"` // empty: all
	Events  []string          `yaml:"events"`  // empty: all
	Timeout time.Duration     `yaml:"timeout"`
	MaxAge  time.Duration     `yaml:"max_age"`
	Headers map[string]string `yaml:"headers"`
	CAFile  string            `yaml:"ca_file"`
	Resign  bool              `yaml:"resign"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)

// ValidName reports whether name can name a destination.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Wants reports whether the destination takes an event of this domain and name.
func (d *Destination) Wants(domain, event string) bool {
	return (len(d.Domains) == 0 || slices.Contains(d.Domains, intake.CanonicalDomain(domain))) &&
		(len(d.Events) == 0 || slices.Contains(d.Events, event))
}

// ParseForward reads one --forward NAME=URL.
func ParseForward(v string) (Destination, error) {
	name, u, ok := strings.Cut(v, "=")
	if !ok {
		return Destination{}, fmt.Errorf("--forward %q: want NAME=URL, e.g. business=https://biz.example.com/live/callback", v)
	}
	d := Destination{Name: strings.TrimSpace(name), URL: strings.TrimSpace(u)}
	return d, d.normalise("--forward " + d.Name)
}

// WithURL is d sent to another URL (archiver replay --destination NAME --to-url URL), checked
// as a configured url is (scheme, host, no credentials, https for a ca_file).
func (d Destination) WithURL(u string) (Destination, error) {
	d.URL = strings.TrimSpace(u)
	return d, d.normalise("--to-url")
}

// maxConfig bounds what LoadConfig reads.
const maxConfig = 1 << 20

// LoadConfig reads a --forward-config YAML file (see the package comment). Unknown options are
// errors naming them.
func LoadConfig(path string) ([]Destination, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--forward-config: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfig+1))
	if err != nil {
		return nil, fmt.Errorf("--forward-config: %w", err)
	}
	if len(b) > maxConfig {
		return nil, fmt.Errorf("--forward-config %s is over %d bytes", path, maxConfig)
	}
	return ParseConfig(path, b)
}

// ParseConfig parses the contents of a --forward-config file (name is for messages).
func ParseConfig(name string, b []byte) ([]Destination, error) {
	var doc struct {
		Destinations []Destination `yaml:"destinations"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("--forward-config %s: %s", name, oneLine(err.Error()))
	}
	for i := range doc.Destinations {
		d := &doc.Destinations[i]
		if err := d.normalise(fmt.Sprintf("--forward-config %s: destination %q", name, d.Name)); err != nil {
			return nil, err
		}
	}
	return doc.Destinations, nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// normalise fills defaults and checks one destination; what names it in messages.
func (d *Destination) normalise(what string) error {
	if !nameRE.MatchString(d.Name) {
		return fmt.Errorf("%s: name %q must be 1-63 of a-z, 0-9 and -", what, d.Name)
	}
	u, err := url.Parse(d.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: url %q is not an http:// or https:// URL", what, d.URL)
	}
	if u.User != nil {
		return fmt.Errorf("%s: url must not carry credentials; use headers", what)
	}
	if d.Timeout == 0 {
		d.Timeout = DefaultTimeout
	}
	if d.MaxAge == 0 {
		d.MaxAge = DefaultMaxAge
	}
	if d.Timeout < 0 || d.MaxAge < 0 {
		return fmt.Errorf("%s: timeout and max_age must be positive", what)
	}
	for i, dom := range d.Domains {
		d.Domains[i] = intake.CanonicalDomain(strings.TrimSpace(dom))
		if d.Domains[i] == "" {
			return fmt.Errorf("%s: empty domain in domains", what)
		}
	}
	for _, e := range d.Events {
		if e != callback.EventPublish && e != callback.EventPublishDone {
			return fmt.Errorf("%s: event %q: want PUBLISH or PUBLISH_DONE", what, e)
		}
	}
	for k := range d.Headers {
		lk := strings.ToLower(k)
		if !httpguts.ValidHeaderFieldName(k) || strings.HasPrefix(lk, "x-livehook-") || lk == "content-type" || lk == "content-length" || lk == "host" {
			return fmt.Errorf("%s: header %q cannot be set (invalid, or set by the relay)", what, k)
		}
		if !httpguts.ValidHeaderFieldValue(d.Headers[k]) {
			return fmt.Errorf("%s: header %q has a control character in its value", what, k)
		}
	}
	if d.CAFile != "" {
		if u.Scheme != "https" {
			return fmt.Errorf("%s: ca_file needs an https:// url", what)
		}
		if _, err := loadCA(d.CAFile); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

func loadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// Merge joins --forward and --forward-config destinations and refuses duplicate names.
func Merge(lists ...[]Destination) ([]Destination, error) {
	var out []Destination
	seen := map[string]bool{}
	for _, l := range lists {
		for _, d := range l {
			if seen[d.Name] {
				return nil, fmt.Errorf("destination name %q is used twice; names must be unique", d.Name)
			}
			seen[d.Name] = true
			out = append(out, d)
		}
	}
	return out, nil
}
