package release_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tfRunner runs terraform with an environment of its own: its own CLI config, no checkpoint
// calls, and none of the developer's HW_*/LIVEHOOK_*/TF_* settings.
type tfRunner struct {
	bin string
	env []string
}

func newTF(t *testing.T, bin, cliConfig string, extraEnv ...string) *tfRunner {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "terraform.tfrc")
	if err := os.WriteFile(conf, []byte(cliConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "HW_") || strings.HasPrefix(k, "LIVEHOOK_") || strings.HasPrefix(k, "TF_") || k == "CHECKPOINT_DISABLE" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "TF_CLI_CONFIG_FILE="+conf, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1",
		"TF_PLUGIN_CACHE_DIR=", "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	return &tfRunner{bin: bin, env: append(env, extraEnv...)}
}

// run returns combined output and the exit code; an error only when terraform did not run.
func (r *tfRunner) run(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	return r.exec(t, dir, r.bin, args...)
}

func (r *tfRunner) exec(t *testing.T, dir, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = r.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee) && ctx.Err() == nil:
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out.String())
	return "", -1
}

// must runs terraform and fails the test unless it exits 0.
func (r *tfRunner) must(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, code := r.run(t, dir, args...)
	if code != 0 {
		t.Fatalf("terraform %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
