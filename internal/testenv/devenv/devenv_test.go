package devenv

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/testenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
)

func TestStartParsesListeningLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, line, want string
	}{
		{"plain", `listening on http://127.0.0.1:4567`, "127.0.0.1:4567"},
		{"json log", `{"time":"x","level":"INFO","msg":"listening on http://127.0.0.1:8123","pid":1}`, "127.0.0.1:8123"},
		{"ipv6", `listening on http://[::1]:99`, "[::1]:99"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			p, err := e.Start(context.Background(), proc.Spec{
				Name: "srv", Path: "/bin/sh",
				Args:          []string{"-c", "echo starting; echo '" + tc.line + "'; exec sleep 60"},
				WaitListening: true, StartTimeout: 5 * time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			if p.Addr != tc.want || p.URL != "http://"+tc.want {
				t.Fatalf("Addr = %q, URL = %q; want %q", p.Addr, p.URL, tc.want)
			}
			if err := p.Shutdown(); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if err := syscall.Kill(p.PID(), 0); err == nil {
				t.Fatalf("process %d still alive after Stop", p.PID())
			}
		})
	}
}

func TestStartFailureShowsLogTail(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.Start(context.Background(), proc.Spec{
		Name: "broken", Path: "/bin/sh", Args: []string{"-c", "echo 'fatal: bad flag --nope' >&2; exit 2"},
		WaitListening: true, StartTimeout: 5 * time.Second,
	})
	if err == nil {
		t.Fatal("Start succeeded for a program that exits at once")
	}
	for _, want := range []string{"broken did not start", "exited early", "fatal: bad flag --nope"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p, err := e.Start(context.Background(), proc.Spec{
		Name: "stubborn", Path: "/bin/sh",
		// The shell ignores TERM, and so does its child sleep (inherited disposition).
		Args:          []string{"-c", "trap '' TERM; echo listening on http://127.0.0.1:1; sleep 60; sleep 60"},
		WaitListening: true, StopTimeout: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Close()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("Close = %v, want an error saying the process was killed", err)
	}
	// SIGKILL is delivered at once, but the orphaned sleep is reaped by init a moment later.
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(-p.PID(), 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has members after Close", p.PID())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHealthURLReadiness(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := e.Start(context.Background(), proc.Spec{
		Name: "nohealth", Path: "/bin/sh", Args: []string{"-c", "echo listening on http://127.0.0.1:1; exec sleep 60"},
		WaitListening: true, HealthURL: "http://{addr}/healthz", StartTimeout: 500 * time.Millisecond,
	})
	if err == nil || !strings.Contains(err.Error(), "not ready after") {
		t.Fatalf("Start = %v, want a readiness timeout", err)
	}
}

func TestCLIConfig(t *testing.T) {
	t.Parallel()
	got := CLIConfig("/opt/bin", "/opt/mirror")
	for _, want := range []string{
		`"registry.terraform.io/livehook/livehook" = "/opt/bin"`,
		`path    = "/opt/mirror"`,
		`exclude = ["registry.terraform.io/livehook/livehook"]`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("CLI config lacks %q:\n%s", want, got)
		}
	}
	if plain := CLIConfig("/opt/bin", ""); !strings.Contains(plain, "direct {}") || strings.Contains(plain, "filesystem_mirror") {
		t.Errorf("CLI config without mirror:\n%s", plain)
	}
}

// TestTerraformInitOffline proves that the generated CLI config lets `terraform init`
// succeed with no network: the provider comes from the local mirror, nothing from the
// registry. The provider binary is never executed by init, so a stub stands in for it.
func TestTerraformInitOffline(t *testing.T) {
	t.Parallel()
	testenv.Terraform(t)
	e := newEnv(t)
	provDir := e.Path("bin")
	cfgDir := e.Path("cfg")
	for _, d := range []string{provDir, cfgDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(provDir, "terraform-provider-livehook"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := `terraform {
  required_providers {
    livehook = { source = "livehook/livehook" }
  }
}
`
	if err := os.WriteFile(filepath.Join(cfgDir, "main.tf"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	tf, err := e.NewTerraform(cfgDir, provDir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tf.Run(context.Background(), nil, "init", "-no-color")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Output, "Installed livehook/livehook") {
		t.Errorf("init output lacks the provider install line:\n%s", res.Output)
	}
	if strings.Contains(res.Output, "registry.terraform.io/.well-known") {
		t.Errorf("init contacted the registry:\n%s", res.Output)
	}
}

func newEnv(t *testing.T) *Env {
	t.Helper()
	e, err := NewEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// TestEmulatorControlStatuses: only the calls that give a 404 or 502 a meaning accept it; for the
// others it is an error, not zero values.
func TestEmulatorControlStatuses(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	c := NewEmulatorControl(srv.URL)
	ctx := context.Background()
	if _, ok, err := c.Config(ctx, "push.example.com"); ok || err != nil {
		t.Errorf("Config on 404 = ok %v, err %v; want not found, no error", ok, err)
	}
	if _, err := c.Stats(ctx); err == nil {
		t.Error("Stats accepted a 404")
	}
	if _, err := c.Deliveries(ctx); err == nil {
		t.Error("Deliveries accepted a 404")
	}
}

// TestTerraformRun runs a stand-in terraform through Terraform.Run: exit codes, okCodes, and the
// graceful stop on interrupt (SIGINT, which terraform turns into a clean shutdown).
func TestTerraformRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		script    string
		okCodes   []int
		interrupt bool
		wantErr   string // "" = success
		wantOut   string
	}{
		{name: "success", script: "echo applied", wantOut: "applied"},
		{name: "listed exit code", script: "echo changes; exit 2", okCodes: []int{2}, wantOut: "changes"},
		{name: "other exit code", script: "echo 'Error: bad'; exit 1", wantErr: "exited with status 1", wantOut: "Error: bad"},
		{name: "interrupt sends SIGINT", script: `trap 'echo got SIGINT; exit 130' INT; echo started; while :; do sleep 0.05; done`,
			interrupt: true, wantErr: "interrupted", wantOut: "got SIGINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			bin := e.Path("terraform")
			if err := os.WriteFile(bin, []byte("#!/bin/sh\n"+tt.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			tf := &Terraform{Bin: bin, Dir: e.Dir, Env: os.Environ(), LogDir: e.Dir}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.interrupt { // once the trap is set
				go func() {
					for i := 0; i < 500; i++ {
						if b, _ := os.ReadFile(filepath.Join(e.Dir, "terraform-apply-01.log")); strings.Contains(string(b), "started") {
							break
						}
						time.Sleep(20 * time.Millisecond)
					}
					cancel()
				}()
			}
			res, err := tf.Run(ctx, tt.okCodes, "apply")
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("Run = %v, want error %q", err, tt.wantErr)
			}
			if res == nil || !strings.Contains(res.Output, tt.wantOut) {
				t.Fatalf("Output = %+v, want it to contain %q", res, tt.wantOut)
			}
		})
	}
}

// TestRepoRootFromNestedModule: from tools/ (module .../tools, which extends the root's path)
// RepoRoot still finds the repository, not the nested module.
func TestRepoRootFromNestedModule(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(root, "tools"))
	if got, err := RepoRoot(); err != nil || got != root {
		t.Fatalf("RepoRoot from tools/ = %q, %v; want %q", got, err, root)
	}
}
