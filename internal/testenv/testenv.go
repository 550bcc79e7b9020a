// Package testenv is the one gating convention for tests that need something beyond Go:
// the terraform binary, a VersityGW S3 server, or cgo.
//
// `go test ./...` on a machine with only Go skips those tests with a message that names what
// enables them. `make test` sets LIVEHOOK_TEST_ALL=1, which turns every such skip into a failure,
// so CI can never go green by skipping.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// AllEnv is the variable `make test` sets: with it, a missing dependency fails the test.
const AllEnv = "LIVEHOOK_TEST_ALL"

// All reports whether every gated test must run (LIVEHOOK_TEST_ALL=1).
func All() bool { return os.Getenv(AllEnv) == "1" }

// Skip skips the test with why, or fails it when LIVEHOOK_TEST_ALL=1.
func Skip(tb testing.TB, why string) {
	tb.Helper()
	if All() {
		tb.Fatalf("%s (%s=1 requires every test to run)", why, AllEnv)
	}
	tb.Skip(why)
}

// Terraform returns the terraform binary for acceptance and end-to-end tests. They run when
// TF_ACC=1 and terraform is found ($TF_ACC_TERRAFORM_PATH or PATH); otherwise they skip.
func Terraform(tb testing.TB) string {
	tb.Helper()
	path, why := TerraformPath()
	if why != "" {
		Skip(tb, why)
	}
	return path
}

// TerraformPath is Terraform for a TestMain: the binary, or why it is not available.
func TerraformPath() (path, why string) {
	if os.Getenv("TF_ACC") == "" && !All() {
		return "", "needs terraform: set TF_ACC=1 (and have terraform on PATH or in TF_ACC_TERRAFORM_PATH) to run it"
	}
	if p := os.Getenv("TF_ACC_TERRAFORM_PATH"); p != "" {
		return p, ""
	}
	p, err := exec.LookPath("terraform")
	if err != nil {
		return "", "needs terraform: not found on PATH (set TF_ACC_TERRAFORM_PATH); it is never downloaded"
	}
	return p, ""
}

// OptInMarker starts the message of an OptIn skip; testsum lists such tests apart and never
// fails on them.
const OptInMarker = "opt-in:"

// OptIn skips a suite that runs against a real external service unless env is "1". Unlike Skip,
// LIVEHOOK_TEST_ALL does not turn it into a failure: CI has no credentials for the real service.
func OptIn(tb testing.TB, env, how string) {
	tb.Helper()
	if os.Getenv(env) != "1" {
		tb.Skipf("%s set %s=1 to run it; %s", OptInMarker, env, how)
	}
}

// Cgo skips a test that needs cgo (for example the DuckDB driver) when it is built without it.
func Cgo(tb testing.TB, enabled bool) {
	tb.Helper()
	if !enabled {
		Skip(tb, "needs cgo: build with CGO_ENABLED=1 and a C compiler")
	}
}

// Binary skips the test unless the named tool is found by find (which returns an install hint
// in its error).
func Binary(tb testing.TB, name string, find func() (string, error)) string {
	tb.Helper()
	p, err := find()
	if err != nil {
		Skip(tb, fmt.Sprintf("needs %s: %v", name, err))
	}
	return p
}

// Tool returns the path of a command-line tool that `make tools` installs (helm, promtool, ...):
// found on PATH or in $GOPATH/bin (where go install puts it); else the test skips (fails under
// LIVEHOOK_TEST_ALL) saying how to install it.
func Tool(tb testing.TB, name string) string {
	tb.Helper()
	return Binary(tb, name, func() (string, error) {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			home, _ := os.UserHomeDir()
			gopath = filepath.Join(home, "go")
		}
		p := filepath.Join(gopath, "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		return "", fmt.Errorf("%s is not on PATH nor in %s: run make tools (or make tool-%s)", name, filepath.Join(gopath, "bin"), name)
	})
}
