package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/aksk"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/devenv"
	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
)

const secret = "cmd-test-secret-key-0123456789"

// Builds the binary once, runs it on a free port, makes one signed request, stops it with SIGTERM.
func TestBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root, err := devenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bins, err := devenv.Build(context.Background(), root, dir, "", "emulator")
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state.json")
	log := filepath.Join(dir, "emulator.log")
	p, err := proc.Launch(context.Background(), proc.Spec{
		Name: "live-emulator", Path: bins.Emulator, Log: log,
		Args: []string{"--listen", "127.0.0.1:0", "--domain", "push.example.com", "--domain", "a.example.com,b.example.com",
			"--state", state, "--log-format", "json", "--rate-limit", "600"},
		Env:           []string{"HW_PROJECT_ID=proj", "HW_ACCESS_KEY=AKCMD", "HW_SECRET_KEY=" + secret},
		WaitListening: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	base := p.URL
	if strings.HasSuffix(base, ":0") {
		t.Fatalf("printed the requested port, not the actual one: %s", base)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body := []byte(`{"url":"https://hooks.example.com/cb"}`)
	req, _ := http.NewRequestWithContext(ctx, "PUT", base+"/v1/proj/notifications/publish?domain=b.example.com", bytes.NewReader(body))
	req.Header.Set(aksk.HeaderProjectID, "proj")
	aksk.Sign(req, body, aksk.Credentials{AccessKey: "AKCMD", SecretKey: secret}, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("signed PUT: %d", resp.StatusCode)
	}

	if err := p.Stop(context.Background(), syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("did not stop after SIGTERM: %v", err)
	}
	if err := p.Err(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.LogTail(30))
	}

	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	// stdout and stderr share the log; the JSON record is written before the plain line.
	logs := string(b)
	if strings.Contains(logs, secret) {
		t.Fatal("the secret key appears in the logs")
	}
	first, _, _ := strings.Cut(logs, "\n")
	var rec struct {
		Msg     string   `json:"msg"`
		Domains []string `json:"domains"`
	}
	if err := json.Unmarshal([]byte(first), &rec); err != nil || rec.Msg != "listening on "+base || len(rec.Domains) != 3 {
		t.Fatalf("first log line %q: want the address and the 3 domains", first)
	}
	st, err := os.ReadFile(state)
	if err != nil || !strings.Contains(string(st), "hooks.example.com") {
		t.Fatalf("state file after the run: %v %s", err, st)
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run([]string{"-version"}, &out, io.Discard, func(string) string { return "" }); code != 0 || out.String() != "live-emulator "+version+"\n" {
		t.Errorf("-version: exit %d, %q", code, out.String())
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	t.Parallel()
	noEnv := func(string) string { return "" }
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no credentials", []string{"--project-id", "p"}, "AccessKey, SecretKey must be set"},
		{"bad log level", []string{"--log-level", "loud"}, "--log-level"},
		{"bad log format", []string{"--log-format", "xml"}, "--log-format"},
		{"bad fail rate", []string{"--project-id", "p", "--access-key", "a", "--secret-key", "s", "--fail-rate", "2"}, "fail rate"},
		{"extra args", []string{"serve"}, "unexpected arguments"},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		if code := run(tt.args, &out, &errb, noEnv); code != 2 || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tt.name, code, errb.String(), tt.want)
		}
		if strings.Contains(errb.String(), "listening") {
			t.Errorf("%s: printed a listening line", tt.name)
		}
	}
}
