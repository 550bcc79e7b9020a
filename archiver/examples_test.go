package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/livehook/terraform-provider-livehook/archiver/server"
)

// The shipped examples are secure as they stand: every `archiver serve` in them parses, verifies
// signatures from a keys file (never --allow-unsigned), and gets that file owner-only.
func TestExamplesSecureAsShipped(t *testing.T) {
	t.Parallel()
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join("..", "examples", "archiver", rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	check := func(where string, args []string) {
		t.Helper()
		if _, err := server.ParseFlags(args, io.Discard); err != nil {
			t.Errorf("%s: archiver serve %v: %v", where, args, err)
		}
		keys, unsigned := false, false
		for _, a := range args {
			keys = keys || a == "--keys" || strings.HasPrefix(a, "--keys=")
			unsigned = unsigned || strings.HasPrefix(a, "--allow-unsigned")
		}
		if !keys || unsigned {
			t.Errorf("%s: archiver serve %v: want --keys and no --allow-unsigned", where, args)
		}
	}

	k8s := read("kubernetes/deployment.yaml")
	lines := strings.Split(k8s, "\n")
	serves := 0
	// The image's entrypoint is `archiver serve`, so a container's args are serve's flags alone.
	for i, l := range lines {
		if strings.TrimSpace(l) == "- serve" {
			t.Errorf("kubernetes/deployment.yaml:%d: args start with serve, but the image's entrypoint is already `archiver serve`", i+1)
		}
		if !strings.HasPrefix(strings.TrimSpace(l), "args:") {
			continue
		}
		var args []string
		for _, a := range lines[i+1:] {
			a = strings.TrimSpace(a)
			if strings.HasPrefix(a, "#") {
				continue
			}
			if !strings.HasPrefix(a, "- --") {
				break
			}
			args = append(args, strings.TrimPrefix(a, "- "))
		}
		if len(args) == 0 {
			continue
		}
		serves++
		check("kubernetes/deployment.yaml", args)
	}
	if serves != 2 {
		t.Errorf("kubernetes/deployment.yaml: %d archiver containers, want 2", serves)
	}
	for _, want := range []string{"defaultMode: 0400", "install -m 0600", "medium: Memory", "runAsNonRoot: true"} {
		if n := strings.Count(k8s, want); n < serves {
			t.Errorf("kubernetes/deployment.yaml: %q appears %d times, want once per archiver", want, n)
		}
	}

	unit := read("systemd/livehook-archiver.service")
	exec := ""
	for _, l := range strings.Split(strings.ReplaceAll(unit, "\\\n", " "), "\n") {
		if strings.HasPrefix(l, "ExecStart=") {
			exec = l
		}
	}
	fields := strings.Fields(exec)
	if len(fields) < 3 || fields[1] != "serve" {
		t.Fatalf("systemd unit: ExecStart %q does not run archiver serve", exec)
	}
	check("systemd/livehook-archiver.service", fields[2:])
	for _, want := range []string{"UMask=0077", "install -m 0600"} {
		if !strings.Contains(unit, want) {
			t.Errorf("systemd unit lacks %q", want)
		}
	}
}
