// Package demo runs livehook's main job end to end on one machine, the way `make demo` shows
// it and the end-to-end test checks it: Terraform (with the locally built provider) points a
// push domain's publish notification at the archiver, the Live emulator fires PUBLISH and
// PUBLISH_DONE callbacks, the archiver writes them to S3 (a real VersityGW), and the
// archive is read back with `archiver events` and compared with what was delivered.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/emulator"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/devenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/versitygw"
)

// Defaults of the demo world.
const (
	DefaultDomain = "push.demo.livehook.test"
	Bucket        = "livehook-archive"
	Prefix        = "demo"
	App           = "live"
	// FlushInterval is the archiver's --flush-interval: short, so the demo finishes fast.
	FlushInterval = time.Second
)

// Options configure a run. The zero value (plus Out) is a complete demo in a temp directory.
type Options struct {
	Out      io.Writer // progress lines; nil discards them
	WorkDir  string    // everything the run writes (logs, spool, S3 data, terraform state); "" = a temp dir removed at the end
	BinDir   string    // where the binaries are built; "" = <repo>/bin, like `make build` (an up-to-date binary is not relinked)
	RepoRoot string    // the repository; "" = found from the current directory
	Domain   string    // push domain; "" = DefaultDomain
	Streams  int       // push sessions to drive; 0 = 3

	// KeepRunning waits, after the archive was checked, until ctx ends (Ctrl-C) with
	// everything still running, so it can be explored; then destroys and stops as usual.
	KeepRunning bool
}

// Event is one callback by its identity: (domain, app, stream, event, publish_timestamp).
type Event struct {
	Domain, App, Stream, Event, PublishTimestamp string
}

func (e Event) String() string {
	return fmt.Sprintf("%s %s/%s/%s @%s", e.Event, e.Domain, e.App, e.Stream, e.PublishTimestamp)
}

// ArchivedEvent is one line read back by `archiver events`.
type ArchivedEvent struct {
	Event
	EventID    string
	Signature  string
	ReceivedAt string
}

// Result is what a run observed; the end-to-end test asserts on it.
type Result struct {
	Domain      string
	WorkDir     string
	Build       time.Duration // building the binaries
	Elapsed     time.Duration // the whole run, build included
	EmulatorURL string
	ArchiverURL string
	S3Endpoint  string

	ConfigAfterApply       *emulator.Notification // the emulator's config for Domain right after apply (nil if none)
	ConfigGoneAfterDestroy bool
	TerraformOutputs       map[string]string

	Delivered []Event // every event the emulator delivered (GET /_emulator/deliveries, delivered ones)
	Archived  []ArchivedEvent
	Objects   []Object // objects under PREFIX/dt=.../
	Sessions  []string // `archiver sessions --format jsonl`, one session per line

	Redelivery Redelivery

	// Business is what the demo's business server got through the archiver's relay: each
	// event once (BusinessRepeats counts repeated requests), signatures checked (BusinessInvalid).
	Business                         []Event
	BusinessRepeats, BusinessInvalid int

	Missing    []Event // delivered but not in the archive
	Duplicated []Event // in the archive more than once
	Unexpected []Event // in the archive but never delivered
}

// Redelivery is the identical body posted a second time straight to the archiver.
type Redelivery struct {
	Event            Event
	Status           int    // the archiver's answer (200 expected)
	DuplicatesMetric string // the archiver's duplicate counter line before -> after, when it exposes one
	StoredOnce       bool   // the event is in the archive exactly once
}

// Object is an archive object.
type Object struct {
	Key  string
	Size int64
}

// Run performs the whole demo. Everything it starts is stopped before it returns, also when
// it fails or ctx is cancelled (Ctrl-C). The error is nil only when every delivered event
// is in the archive exactly once and nothing else is.
//
// With no WorkDir the temporary directory is removed on success and kept (for its logs) on
// failure; Result.WorkDir names it.
func Run(ctx context.Context, o Options) (_ *Result, err error) {
	r := &runner{o: o, start: time.Now(), res: &Result{}}
	if r.o.Out == nil {
		r.o.Out = io.Discard
	}
	if r.o.Domain == "" {
		r.o.Domain = DefaultDomain
	}
	if r.o.Streams <= 0 {
		r.o.Streams = 3
	}
	r.res.Domain = r.o.Domain
	if r.o.WorkDir == "" {
		dir, terr := os.MkdirTemp("", "livehook-demo-")
		if terr != nil {
			return r.res, fmt.Errorf("demo: temporary directory: %w", terr)
		}
		r.o.WorkDir = dir
		defer func() {
			if err == nil {
				_ = os.RemoveAll(dir)
			}
		}()
	} else {
		// A reused directory starts from a clean slate: old objects, spool or state would
		// make the archive differ from this run's deliveries.
		for _, d := range []string{"s3", "spool", "terraform", "logs", "provider-mirror", "keys.json", "terraform.tfrc", "s3.env"} {
			if err := os.RemoveAll(filepath.Join(r.o.WorkDir, d)); err != nil {
				return r.res, fmt.Errorf("demo: clean %s: %w", r.o.WorkDir, err)
			}
		}
	}
	env, err := devenv.NewEnv(r.o.WorkDir)
	if err != nil {
		return r.res, err
	}
	r.env = env
	r.res.WorkDir = env.Dir
	err = r.run(ctx)
	if cerr := env.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err == nil {
		r.step("stopped", "archiver, emulator and VersityGW (by PID)")
	}
	r.res.Elapsed = time.Since(r.start)
	return r.res, err
}

type runner struct {
	o     Options
	env   *devenv.Env
	start time.Time
	res   *Result

	bins     devenv.Binaries
	s3       *versitygw.Server
	archiver *proc.Process
	emu      *proc.Process
	ctl      *devenv.EmulatorControl
	tf       *devenv.Terraform
	key      string
	tfVars   []string
	biz      *business
}

// step prints one progress line: elapsed time, a short label, the message.
func (r *runner) step(label, format string, args ...any) {
	fmt.Fprintf(r.o.Out, "[%5.1fs] %-10s %s\n", time.Since(r.start).Seconds(), label, fmt.Sprintf(format, args...))
}

// detail prints an indented continuation line.
func (r *runner) detail(format string, args ...any) {
	fmt.Fprintf(r.o.Out, "%20s%s\n", "", fmt.Sprintf(format, args...))
}

func (r *runner) run(ctx context.Context) error {
	r.step("livehook", "demo in %s", r.env.Dir)
	if err := r.build(ctx); err != nil {
		return err
	}
	if err := r.startServices(ctx); err != nil {
		return err
	}
	if err := r.apply(ctx); err != nil {
		return err
	}
	destroyed := false
	defer func() {
		if !destroyed && ctx.Err() == nil {
			// A failure after apply: still remove the config (best effort, errors already reported).
			_, _ = r.tf.Run(context.WithoutCancel(ctx), nil, append([]string{"destroy", "-auto-approve", "-no-color"}, r.tfVars...)...)
		}
	}()
	if err := r.drive(ctx); err != nil {
		return err
	}
	r.waitBusiness(ctx)
	if err := r.readBack(ctx); err != nil {
		return err
	}
	if err := r.sessions(ctx); err != nil {
		return err
	}
	verdict := r.verify()
	if r.o.KeepRunning {
		r.keepRunning(ctx)
		ctx = context.WithoutCancel(ctx)
	}
	destroyed = true
	if err := r.destroy(ctx); err != nil {
		return errors.Join(verdict, err)
	}
	return verdict
}

func (r *runner) build(ctx context.Context) error {
	// Fail early and clearly on missing tools, before any work.
	if _, err := devenv.TerraformBinary(); err != nil {
		return err
	}
	if _, err := versitygw.Binary(); err != nil {
		return err
	}
	root := r.o.RepoRoot
	if root == "" {
		var err error
		if root, err = devenv.RepoRoot(); err != nil {
			return err
		}
	}
	r.o.RepoRoot = root
	binDir := r.o.BinDir
	if binDir == "" {
		binDir = filepath.Join(root, "bin")
	}
	t0 := time.Now()
	bins, err := devenv.Build(ctx, root, binDir, devenv.Version(ctx, root))
	if err != nil {
		return err
	}
	r.bins = bins
	r.res.Build = time.Since(t0)
	r.step("build", "provider, archiver, emulator -> %s (%.1fs)", bins.Dir, r.res.Build.Seconds())
	return nil
}

func (r *runner) startServices(ctx context.Context) error {
	s3, err := versitygw.Start(ctx, r.env.Path("s3"))
	if err != nil {
		return err
	}
	r.env.Defer("VersityGW", s3.Stop)
	r.s3 = s3
	r.res.S3Endpoint = s3.Endpoint
	if err := s3.CreateBucket(ctx, Bucket); err != nil {
		return fmt.Errorf("create bucket %s: %w", Bucket, err)
	}
	r.step("s3", "VersityGW on %s, bucket %s", s3.Endpoint, Bucket)

	// The signing key Live will use for the demo domain, and the archiver's keys file with it.
	r.key = randomHex(16) // 32 characters: the minimum auth_sign_key length
	keysPath := r.env.Path("keys.json")
	keys, _ := json.Marshal(map[string]string{r.o.Domain: r.key})
	if err := os.WriteFile(keysPath, keys, 0o600); err != nil {
		return fmt.Errorf("write keys file: %w", err)
	}
	r.biz, err = startBusiness(r.key)
	if err != nil {
		return fmt.Errorf("business server: %w", err)
	}
	r.env.Defer("business server", r.biz.Close)
	r.step("business", "the business server (the receiver Live called before) on %s", r.biz.url)
	r.archiver, err = r.env.Start(ctx, proc.Spec{
		Name: "archiver", Path: r.bins.Archiver,
		Args: []string{"serve",
			"--listen", "127.0.0.1:0",
			"--store", r.storeURL(),
			"--s3-endpoint", s3.Endpoint,
			"--spool", r.env.Path("spool"),
			"--ack", "spool",
			"--flush-interval", FlushInterval.String(),
			"--keys", keysPath,
			"--forward", "business=" + r.biz.url,
		},
		Env:           s3.Env(),
		WaitListening: true,
		HealthURL:     "http://{addr}/readyz",
	})
	if err != nil {
		return err
	}
	r.res.ArchiverURL = r.archiver.URL
	r.step("archiver", "%s -> %s (spool mode, flush every %s, signing key for %s, forwarding to the business server)", r.archiver.URL, r.storeURL(), FlushInterval, r.o.Domain)

	r.emu, err = r.env.Start(ctx, proc.Spec{
		Name: "emulator", Path: r.bins.Emulator,
		Args: []string{"--listen", "127.0.0.1:0", "--domain", r.o.Domain},
		// Credentials through the environment, not argv (ps shows argv).
		Env:           emulatorCreds(),
		WaitListening: true,
		HealthURL:     "http://{addr}/_emulator/healthz",
	})
	if err != nil {
		return err
	}
	r.ctl = devenv.NewEmulatorControl(r.emu.URL)
	r.res.EmulatorURL = r.emu.URL
	r.step("emulator", "Live API on %s (push domain %s)", r.emu.URL, r.o.Domain)
	return nil
}

// The emulator's project and AK/SK; the provider gets the same through HW_* variables.
const (
	projectID = "0123456789abcdef0123456789abcdef"
	accessKey = "DEMOACCESSKEY0000000"
	region    = "cn-north-4"
)

var secretKey = randomHex(20)

func emulatorCreds() []string {
	return []string{"HW_PROJECT_ID=" + projectID, "HW_ACCESS_KEY=" + accessKey, "HW_SECRET_KEY=" + secretKey}
}

func (r *runner) storeURL() string { return "s3://" + Bucket + "/" + Prefix }

func (r *runner) apply(ctx context.Context) error {
	// Work on a copy: terraform writes .terraform/, the lock file and the state next to it.
	src := filepath.Join(r.o.RepoRoot, "examples", "demo")
	dir := r.env.Path("terraform")
	if err := copyTF(src, dir); err != nil {
		return err
	}
	tf, err := r.env.NewTerraform(dir, r.bins.Dir, append(emulatorCreds(),
		"HW_REGION_NAME="+region,
		"LIVEHOOK_ENDPOINT="+r.emu.URL,
		// Secret input through the environment, not argv.
		"TF_VAR_notify_key="+r.key,
	)...)
	if err != nil {
		return err
	}
	r.tf = tf
	r.tfVars = []string{"-var", "domain=" + r.o.Domain, "-var", "archiver_url=" + r.archiver.URL, "-var", "business_url=" + r.biz.url}

	res, err := tf.Run(ctx, nil, "init", "-no-color")
	if err != nil {
		return err
	}
	r.step("terraform", "init (%.1fs): provider from the local build, nothing downloaded", res.Duration.Seconds())

	res, err = tf.Run(ctx, nil, append([]string{"apply", "-auto-approve", "-no-color"}, r.tfVars...)...)
	if err != nil {
		return err
	}
	r.step("terraform", "apply (%.1fs): %s", res.Duration.Seconds(), summaryLine(res.Output, "Apply complete!"))
	out, err := tf.Run(ctx, nil, "output", "-json", "-no-color")
	if err != nil {
		return err
	}
	r.res.TerraformOutputs = parseOutputs(out.Output)
	for _, k := range slices.Sorted(maps.Keys(r.res.TerraformOutputs)) {
		r.detail("%s = %s", k, r.res.TerraformOutputs[k])
	}

	n, ok, err := r.ctl.Config(ctx, r.o.Domain)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("after terraform apply the emulator has no publish notification for %s", r.o.Domain)
	}
	r.res.ConfigAfterApply = &n
	want := r.archiver.URL + "/callback"
	if n.URL != want || n.AuthSignKey != r.key {
		return fmt.Errorf("after terraform apply the emulator's config for %s is url=%q key set=%t, want url=%q with the demo key",
			r.o.Domain, n.URL, n.AuthSignKey != "", want)
	}
	r.step("emulator", "config for %s: url %s, signed with the demo key, area %s", r.o.Domain, n.URL, orDash(n.CallBackArea))
	return nil
}

// drive fires PUBLISH for every stream, then PUBLISH_DONE, then redelivers one event.
func (r *runner) drive(ctx context.Context) error {
	streams := make([]emulator.Stream, r.o.Streams)
	for i := range streams {
		streams[i] = emulator.Stream{
			Domain:   r.o.Domain,
			App:      App,
			Stream:   fmt.Sprintf("demo-%d", i+1),
			UserArgs: fmt.Sprintf("auth_info=%s&vhost=%s", randomHex(8), r.o.Domain),
			ClientIP: fmt.Sprintf("203.0.113.%d", 10+i),
		}
	}
	var first *emulator.Report
	for _, kind := range []string{"PUBLISH", "PUBLISH_DONE"} {
		for _, s := range streams {
			fire := r.ctl.Publish
			if kind == "PUBLISH_DONE" {
				fire = r.ctl.PublishDone
			}
			rep, err := fire(ctx, s)
			if err != nil {
				return err
			}
			if first == nil {
				first = rep
			}
			last := rep.Attempts[len(rep.Attempts)-1]
			r.step("stream", "%-12s %s/%s -> archiver answered %d (%d attempt%s)", kind, s.App, s.Stream, last.Status, len(rep.Attempts), plural(len(rep.Attempts)))
		}
	}

	// Redelivery: the Live service retries a callback it thinks failed, with the identical
	// body. Send the first event again, byte for byte, straight to the archiver.
	ev, err := identity(first.Body)
	if err != nil {
		return fmt.Errorf("emulator report body: %w", err)
	}
	before := duplicatesMetric(ctx, r.archiver.URL)
	status, err := postCallback(ctx, first.URL, first.Body)
	if err != nil {
		return fmt.Errorf("redelivery: %w", err)
	}
	after := duplicatesMetric(ctx, r.archiver.URL)
	r.res.Redelivery = Redelivery{Event: ev, Status: status}
	msg := fmt.Sprintf("%s %s/%s again (identical body) -> archiver answered %d", ev.Event, ev.App, ev.Stream, status)
	if before != "" || after != "" {
		r.res.Redelivery.DuplicatesMetric = before + " -> " + after
		msg += fmt.Sprintf("; duplicates counted %s -> %s", orDash(before), orDash(after))
	}
	r.step("redeliver", "%s", msg)
	if status != 200 {
		return fmt.Errorf("redelivery of %s was answered %d, want 200 (a redelivery must be acknowledged)", ev, status)
	}

	ds, err := r.ctl.Deliveries(ctx)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if !d.Delivered {
			continue
		}
		e, err := identity(d.Body)
		if err != nil {
			return fmt.Errorf("emulator delivery body: %w", err)
		}
		if e.Domain == r.o.Domain {
			r.res.Delivered = append(r.res.Delivered, e)
		}
	}
	return nil
}

func (r *runner) keepRunning(ctx context.Context) {
	r.step("running", "until Ctrl-C; try:")
	r.detail("curl -s %s/_emulator/configs?domain=%s", r.emu.URL, r.o.Domain)
	r.detail(`curl -s -XPOST %s/_emulator/publish -d '{"domain":"%s","app":"live","stream":"mine"}'`, r.emu.URL, r.o.Domain)
	// The S3 keys stay out of the terminal: they go to a file the user can source.
	envFile := r.env.Path("s3.env")
	var b strings.Builder
	for _, kv := range r.s3.Env() {
		fmt.Fprintf(&b, "export %s\n", kv)
	}
	if err := os.WriteFile(envFile, []byte(b.String()), 0o600); err == nil {
		r.detail(". %s && %s/%s", envFile, r.bins.Dir, r.eventsCommandLine())
	}
	<-ctx.Done()
	fmt.Fprintln(r.o.Out)
}

func (r *runner) destroy(ctx context.Context) error {
	res, err := r.tf.Run(ctx, nil, append([]string{"destroy", "-auto-approve", "-no-color"}, r.tfVars...)...)
	if err != nil {
		return err
	}
	_, ok, err := r.ctl.Config(ctx, r.o.Domain)
	if err != nil {
		return err
	}
	r.res.ConfigGoneAfterDestroy = !ok
	if ok {
		return fmt.Errorf("after terraform destroy the emulator still has a publish notification for %s", r.o.Domain)
	}
	r.step("terraform", "destroy (%.1fs): %s Config gone from the emulator.", res.Duration.Seconds(), summaryLine(res.Output, "Destroy complete!"))
	return nil
}

func (r *runner) verify() error {
	delivered := map[Event]int{}
	for _, e := range r.res.Delivered {
		delivered[e]++
	}
	archived := map[Event]int{}
	for _, a := range r.res.Archived {
		archived[a.Event]++
	}
	for _, e := range r.res.Delivered {
		if archived[e] == 0 && !slices.Contains(r.res.Missing, e) {
			r.res.Missing = append(r.res.Missing, e)
		}
	}
	for _, a := range r.res.Archived {
		switch {
		case delivered[a.Event] == 0:
			if !slices.Contains(r.res.Unexpected, a.Event) {
				r.res.Unexpected = append(r.res.Unexpected, a.Event)
			}
		case archived[a.Event] > 1:
			if !slices.Contains(r.res.Duplicated, a.Event) {
				r.res.Duplicated = append(r.res.Duplicated, a.Event)
			}
		}
	}
	r.res.Redelivery.StoredOnce = archived[r.res.Redelivery.Event] == 1
	if r.biz != nil && (!slices.Equal(sortedEvents(r.res.Business), sortedEvents(uniqueEvents(r.res.Delivered))) || r.res.BusinessInvalid > 0 || r.res.BusinessRepeats > 0) {
		msg := fmt.Sprintf("the business server got %d events (%d repeated requests, %d invalid signatures), want each of the %d delivered once, signed",
			len(r.res.Business), r.res.BusinessRepeats, r.res.BusinessInvalid, len(uniqueEvents(r.res.Delivered)))
		r.step("check", "FAILED: %s", msg)
		return errors.New(msg)
	}
	closed := 0
	for _, s := range r.res.Sessions {
		if strings.Contains(s, `"status":"closed"`) {
			closed++
		}
	}
	if closed != r.o.Streams {
		msg := fmt.Sprintf("archiver sessions lists %d closed sessions, want %d (one per stream):\n%s", closed, r.o.Streams, strings.Join(r.res.Sessions, "\n"))
		r.step("check", "FAILED: %s", msg)
		return errors.New(msg)
	}
	if len(r.res.Missing)+len(r.res.Duplicated)+len(r.res.Unexpected) == 0 && len(r.res.Delivered) > 0 {
		r.step("check", "%d events delivered, %d archived: each exactly once (the redelivered one too)",
			len(r.res.Delivered), len(r.res.Archived))
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "archive does not match the deliveries (%d delivered, %d archived)", len(r.res.Delivered), len(r.res.Archived))
	for _, x := range []struct {
		what string
		evs  []Event
	}{{"missing", r.res.Missing}, {"stored more than once", r.res.Duplicated}, {"never delivered", r.res.Unexpected}} {
		for _, e := range x.evs {
			fmt.Fprintf(&b, "\n  %s: %s", x.what, e)
		}
	}
	r.step("check", "FAILED: %s", b.String())
	return errors.New(b.String())
}

// waitBusiness waits (at most 10 s) until the business server has every delivered event.
func (r *runner) waitBusiness(ctx context.Context) {
	want := len(uniqueEvents(r.res.Delivered))
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, repeats, invalid := r.biz.got()
		if len(got) >= want || time.Now().After(deadline) || ctx.Err() != nil {
			r.res.Business, r.res.BusinessRepeats, r.res.BusinessInvalid = got, repeats, invalid
			r.step("business", "%d callbacks arrived at the business server through the relay, each once, %d with an invalid signature", len(got), invalid)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func uniqueEvents(es []Event) []Event {
	var out []Event
	for _, e := range es {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

func sortedEvents(es []Event) []Event {
	out := slices.Clone(es)
	slices.SortFunc(out, func(a, b Event) int { return strings.Compare(a.String(), b.String()) })
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
