//go:build unix

package proc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A program that exits 0 on SIGINT and ignores SIGTERM (terraform's graceful stop is SIGINT).
const intOnly = `trap "" TERM; trap "exit 0" INT; echo listening on http://127.0.0.1:1; while :; do sleep 0.05; done`

func TestShutdownSendsStopSignal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		sig    syscall.Signal
		killed bool
	}{
		{name: "SIGINT", sig: syscall.SIGINT},
		{name: "default SIGTERM", killed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := Launch(context.Background(), Spec{
				Name: "intonly", Path: "/bin/sh", Args: []string{"-c", intOnly}, Log: filepath.Join(t.TempDir(), "log"),
				WaitListening: true, StopSignal: tt.sig, StopTimeout: time.Second,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Kill() })
			err = p.Shutdown()
			if errors.Is(err, ErrKilled) != tt.killed || (!tt.killed && (err != nil || p.ExitCode() != 0)) {
				t.Fatalf("Shutdown = %v, exit %d; want killed=%v", err, p.ExitCode(), tt.killed)
			}
			if again := p.Shutdown(); !errors.Is(again, err) && again != err {
				t.Errorf("second Shutdown = %v, want the first result %v", again, err)
			}
		})
	}
}

func TestLaunchReadiness(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		script  string
		ready   bool // Spec.Ready waits for the file "ready" in the working directory
		wantErr string
	}{
		// No readiness criterion: a run to completion, however short, is not an early exit.
		{name: "run to completion", script: "exit 3"},
		{name: "custom check", script: "sleep 0.2; touch ready; exec sleep 30", ready: true},
		{name: "exits before ready", script: "echo 'fatal: nope'; exit 1", ready: true, wantErr: "fatal: nope"},
		{name: "never ready", script: "exec sleep 30", ready: true, wantErr: "not ready after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			spec := Spec{Name: "sh", Path: "/bin/sh", Args: []string{"-c", tt.script}, Dir: dir,
				Log: filepath.Join(dir, "log"), StartTimeout: 2 * time.Second}
			if tt.ready {
				spec.Ready = func(context.Context, *Process) error {
					_, err := os.Stat(filepath.Join(dir, "ready"))
					return err
				}
			}
			p, err := Launch(context.Background(), spec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "sh did not start") {
					t.Fatalf("Launch = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Kill() })
			if tt.script == "exit 3" {
				<-p.Done()
				if p.ExitCode() != 3 {
					t.Errorf("ExitCode = %d, want 3", p.ExitCode())
				}
			} else if !p.Running() {
				t.Error("not running after Launch")
			}
		})
	}
}

func TestLogTail(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("one\ntwo\nthree\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		n    int
		want string
	}{
		{path, 2, "    last lines of " + path + ":\n    | two\n    | three"},
		{path, 9, "    last lines of " + path + ":\n    | one\n    | two\n    | three"},
		{path + ".missing", 2, "    (no log: "},
	}
	for _, tt := range tests {
		if got := LogTail(tt.path, tt.n); !strings.HasPrefix(got, tt.want) || (!strings.HasSuffix(tt.path, ".missing") && got != tt.want) {
			t.Errorf("LogTail(%q, %d) = %q, want %q", tt.path, tt.n, got, tt.want)
		}
	}
}

// TestLaunchIgnoresAnEarlierRunsAddress: the log is appended to, so a previous run's "listening
// on" line is still in it; the new process's address is the one it prints itself.
func TestLaunchIgnoresAnEarlierRunsAddress(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	if err := os.WriteFile(log, []byte("listening on http://127.0.0.1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Launch(context.Background(), Spec{Name: "sh", Path: "/bin/sh", Dir: dir, Log: log,
		Args: []string{"-c", "sleep 0.2; echo 'listening on http://127.0.0.1:2'; exec sleep 30"}, WaitListening: true, StartTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	if p.Addr != "127.0.0.1:2" {
		t.Fatalf("Addr = %q, want the new run's 127.0.0.1:2", p.Addr)
	}
}
