// Command benchprovider (`make bench-provider`) measures the Terraform provider at scale:
// the real terraform applies, plans (refresh of every resource, expecting no changes) and
// destroys N livehook_publish_notification resources against the emulator with a
// per-minute rate limit and injected 5xx answers, and compares each phase's wall time with
// the lower bound the rate limit sets (admitted API calls / allowed rate).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/testenv/devenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
)

type config struct {
	resources   int
	parallelism int
	rateLimit   int     // per minute, emulator and provider alike
	failRate    float64 // injected 500s
	maxRetries  int
	target      float64 // wall/bound ratio to meet
	workDir     string
	noFail      bool
}

func main() {
	var c config
	flag.IntVar(&c.resources, "resources", 100, "livehook_publish_notification resources (one push domain each)")
	flag.IntVar(&c.parallelism, "parallelism", 10, "terraform -parallelism")
	flag.IntVar(&c.rateLimit, "rate-limit", 300, "emulator limit in requests per minute; the provider's requests_per_second is set to the same rate")
	flag.Float64Var(&c.failRate, "fail-rate", 0.05, "fraction of management requests the emulator answers 500")
	flag.IntVar(&c.maxRetries, "max-retries", 10, "provider max_retries")
	flag.Float64Var(&c.target, "target", 1.3, "a phase passes when wall time / lower bound is at most this")
	flag.StringVar(&c.workDir, "workdir", "", "keep logs and terraform files in this directory (default: a temporary directory, removed after a successful run)")
	flag.BoolVar(&c.noFail, "no-fail", false, "exit 0 even when a phase misses the ratio target (errors still fail)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }()
	os.Exit(run(ctx, c, os.Stdout))
}

// phase is one terraform command and what it cost.
type phase struct {
	name      string
	args      []string
	wall      time.Duration
	calls     int64 // management API requests, all statuses
	admitted  int64 // calls not answered 429: the ones the rate limit lets through
	throttled int64 // 429
	injected  int64 // injected 500s (each costs a retry)
	byStatus  map[int]int64
	exitCode  int
	tfErrors  int // "Error:" diagnostics in terraform's output
	err       error
}

func (p *phase) bound(perSecond float64) time.Duration {
	return time.Duration(float64(p.admitted) / perSecond * float64(time.Second))
}

func run(ctx context.Context, c config, out io.Writer) int {
	start := time.Now()
	dir := c.workDir
	if dir == "" {
		d, err := os.MkdirTemp("", "livehook-bench-provider-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench-provider: %v\n", err)
			return 1
		}
		dir = d
	}
	env, err := devenv.NewEnv(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-provider: %v\n", err)
		return 1
	}
	phases, err := bench(ctx, env, c, out)
	if cerr := env.Close(); cerr != nil && err == nil {
		err = cerr
	}
	perSecond := float64(c.rateLimit) / 60
	code := report(out, c, phases, perSecond)
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nbench-provider: %v\nlogs: %s/logs/\n", err, env.Dir)
		return 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "logs: %s/logs/\n", env.Dir)
	} else if c.workDir == "" {
		_ = os.RemoveAll(dir)
	}
	fmt.Fprintf(out, "\ntotal %.1fs\n", time.Since(start).Seconds())
	return code
}

const (
	projectID = "0123456789abcdef0123456789abcdef"
	accessKey = "BENCHACCESSKEY000000"
	secretKey = "bench-secret-key-not-a-real-one-0000"
)

func domain(i int) string { return fmt.Sprintf("push%03d.bench.livehook.test", i) }

func bench(ctx context.Context, env *devenv.Env, c config, out io.Writer) ([]*phase, error) {
	if _, err := devenv.TerraformBinary(); err != nil {
		return nil, err
	}
	root, err := devenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	bins, err := devenv.Build(ctx, root, filepath.Join(root, "bin"), devenv.Version(ctx, root), "provider", "emulator")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "built provider and emulator in %.1fs (%s)\n", time.Since(t0).Seconds(), bins.Dir)

	creds := []string{"HW_PROJECT_ID=" + projectID, "HW_ACCESS_KEY=" + accessKey, "HW_SECRET_KEY=" + secretKey}
	domains := make([]string, c.resources)
	for i := range domains {
		domains[i] = domain(i)
	}
	emu, err := env.Start(ctx, proc.Spec{
		Name: "emulator", Path: bins.Emulator,
		Args: []string{"--listen", "127.0.0.1:0", "--log-level", "warn",
			"--rate-limit", fmt.Sprint(c.rateLimit), "--fail-rate", fmt.Sprint(c.failRate),
			"--domain", strings.Join(domains, ",")},
		Env:           creds,
		WaitListening: true,
		HealthURL:     "http://{addr}/_emulator/healthz",
	})
	if err != nil {
		return nil, err
	}
	ctl := devenv.NewEmulatorControl(emu.URL)
	fmt.Fprintf(out, "emulator on %s: %d push domains, %d requests/min, %.0f%% injected 500s\n", emu.URL, c.resources, c.rateLimit, c.failRate*100)

	cfgDir := env.Path("terraform")
	if err := os.MkdirAll(cfgDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(env.Path("terraform", "main.tf"), []byte(configHCL(c)), 0o644); err != nil {
		return nil, err
	}
	tf, err := env.NewTerraform(cfgDir, bins.Dir, append(creds, "LIVEHOOK_ENDPOINT="+emu.URL)...)
	if err != nil {
		return nil, err
	}
	if _, err := tf.Run(ctx, nil, "init", "-no-color"); err != nil {
		return nil, err
	}

	par := fmt.Sprintf("-parallelism=%d", c.parallelism)
	phases := []*phase{
		{name: "apply", args: []string{"apply", "-auto-approve", "-no-color", par}},
		{name: "plan (refresh, no changes)", args: []string{"plan", "-detailed-exitcode", "-no-color", par}},
		{name: "destroy", args: []string{"destroy", "-auto-approve", "-no-color", par}},
	}
	var done []*phase
	for i, p := range phases {
		fmt.Fprintf(out, "terraform %s ...\n", strings.Join(p.args, " "))
		if err := measure(ctx, tf, ctl, p); err != nil {
			return append(done, p), err
		}
		done = append(done, p)
		// Check the outcome in the emulator (control API, not counted in the stats).
		wantConfigs := c.resources
		if i == 2 {
			wantConfigs = 0
		}
		if n, err := countConfigs(ctx, ctl, domains); err != nil {
			return done, err
		} else if n != wantConfigs {
			return done, fmt.Errorf("after %s the emulator has %d publish notifications, want %d", p.name, n, wantConfigs)
		}
	}
	return done, nil
}

func measure(ctx context.Context, tf *devenv.Terraform, ctl *devenv.EmulatorControl, p *phase) error {
	before, err := ctl.Stats(ctx)
	if err != nil {
		return err
	}
	var ok []int
	if p.args[0] == "plan" {
		ok = []int{2} // reported below with a clearer message
	}
	res, runErr := tf.Run(ctx, ok, p.args...)
	if runErr == nil && res.ExitCode == 2 {
		runErr = fmt.Errorf("plan after apply is not empty (exit code 2): the provider reports a difference on refresh\n%s", proc.LogTail(res.LogPath, 30))
	}
	after, err := ctl.Stats(ctx)
	if err != nil {
		return err
	}
	p.byStatus = map[int]int64{}
	for st, n := range after.ByStatus {
		if d := n - before.ByStatus[st]; d != 0 {
			p.byStatus[st] = d
		}
	}
	p.calls = after.Requests - before.Requests
	p.throttled = p.byStatus[429]
	p.admitted = p.calls - p.throttled
	p.injected = after.InjectedFailures - before.InjectedFailures
	if res != nil {
		p.wall = res.Duration
		p.exitCode = res.ExitCode
		p.tfErrors = strings.Count(res.Output, "Error: ")
	}
	p.err = runErr
	if runErr != nil {
		return fmt.Errorf("%s: %w", p.name, runErr)
	}
	return nil
}

func countConfigs(ctx context.Context, ctl *devenv.EmulatorControl, domains []string) (int, error) {
	n := 0
	for _, d := range domains {
		_, ok, err := ctl.Config(ctx, d)
		if err != nil {
			return 0, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

// configHCL is N resources with for_each, the provider limited to the emulator's rate.
func configHCL(c config) string {
	return fmt.Sprintf(`terraform {
  required_providers {
    livehook = { source = "livehook/livehook" }
  }
}

# Credentials and endpoint come from HW_* and LIVEHOOK_ENDPOINT.
provider "livehook" {
  requests_per_second = %g # = %d per minute, the Live API quota
  max_retries         = %d
}

locals {
  domains = toset([for i in range(%d) : format("push%%03d.bench.livehook.test", i)])
}

resource "livehook_publish_notification" "bench" {
  for_each       = local.domains
  domain         = each.key
  url            = "https://archiver.example.com/callback/${each.key}"
  call_back_area = "mainland_china"
}
`, float64(c.rateLimit)/60, c.rateLimit, c.maxRetries, c.resources)
}

// report prints the markdown table and returns the exit code: 1 on errors, and on ratio
// misses unless -no-fail.
func report(out io.Writer, c config, phases []*phase, perSecond float64) int {
	fmt.Fprintf(out, "\n%d resources, terraform -parallelism=%d, limit %d req/min (%.1f/s) in the emulator and the provider, %.0f%% injected 500s\n\n",
		c.resources, c.parallelism, c.rateLimit, perSecond, c.failRate*100)
	fmt.Fprintln(out, "| phase | wall | API calls | by status | admitted (non-429) | lower bound | wall / bound | 429s | 500s injected | terraform errors | result |")
	fmt.Fprintln(out, "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
	code := 0
	for _, p := range phases {
		bound := p.bound(perSecond)
		ratio := 0.0
		if bound > 0 {
			ratio = p.wall.Seconds() / bound.Seconds()
		}
		errs := p.tfErrors
		if p.err != nil && errs == 0 {
			errs = 1
		}
		result := "ok"
		switch {
		case errs > 0:
			result = "FAIL (errors)"
			code = 1
		case ratio > c.target:
			result = fmt.Sprintf("FAIL (> %.2gx)", c.target)
			if !c.noFail {
				code = 1
			}
		}
		fmt.Fprintf(out, "| %s | %.1fs | %d | %s | %d | %.1fs | %.2fx | %d | %d | %d | %s |\n",
			p.name, p.wall.Seconds(), p.calls, statuses(p.byStatus), p.admitted, bound.Seconds(), ratio, p.throttled, p.injected, errs, result)
	}
	return code
}

func statuses(m map[int]int64) string {
	var parts []string
	for _, st := range []int{200, 201, 204, 400, 401, 404, 429, 500, 503} {
		if n := m[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d×%d", n, st))
		}
	}
	for st, n := range m {
		switch st {
		case 200, 201, 204, 400, 401, 404, 429, 500, 503:
		default:
			parts = append(parts, fmt.Sprintf("%d×%d", n, st))
		}
	}
	return strings.Join(parts, " ")
}
