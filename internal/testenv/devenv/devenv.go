// Package devenv is the plumbing shared by the demo, the end-to-end tests and the provider
// benchmark: build livehook's binaries (Build, the one `go build` of test and bench binaries),
// start them with proc.Launch on free 127.0.0.1 ports with their output in log files, run
// terraform against a local build, and stop every process again (on return, on failure and on
// Ctrl-C) through a cleanup stack.
package devenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
)

// Env owns a working directory and a stack of cleanups (processes to stop, servers to close).
// Close runs the stack in reverse order; it is safe to call more than once.
type Env struct {
	Dir string // working directory: logs, configs, terraform state

	mu       sync.Mutex
	cleanups []cleanup
}

type cleanup struct {
	name string
	fn   func() error
}

// NewEnv returns an Env rooted at dir (created when missing).
func NewEnv(dir string) (*Env, error) {
	if dir == "" {
		return nil, errors.New("devenv: working directory must be set")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("devenv: working directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("devenv: create working directory: %w", err)
	}
	return &Env{Dir: abs}, nil
}

// Defer pushes fn onto the cleanup stack; name appears in the error if fn fails.
func (e *Env) Defer(name string, fn func() error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cleanups = append(e.cleanups, cleanup{name, fn})
}

// Close runs every cleanup, last pushed first, and joins their errors.
func (e *Env) Close() error {
	e.mu.Lock()
	cs := e.cleanups
	e.cleanups = nil
	e.mu.Unlock()
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		if err := cs[i].fn(); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", cs[i].name, err))
		}
	}
	return errors.Join(errs...)
}

// Start launches spec (proc.Launch) with its output appended to <Dir>/logs/<name>.log and its
// working directory defaulting to Dir, and pushes its Shutdown onto the cleanup stack.
func (e *Env) Start(ctx context.Context, spec proc.Spec) (*proc.Process, error) {
	if err := os.MkdirAll(e.Path("logs"), 0o755); err != nil {
		return nil, fmt.Errorf("devenv: %w", err)
	}
	spec.Log = e.Path("logs", spec.Name+".log")
	if spec.Dir == "" {
		spec.Dir = e.Dir
	}
	p, err := proc.Launch(ctx, spec)
	if err != nil {
		return nil, err
	}
	e.Defer(spec.Name, p.Shutdown)
	return p, nil
}

// Path joins elem onto the working directory.
func (e *Env) Path(elem ...string) string {
	return filepath.Join(append([]string{e.Dir}, elem...)...)
}

// RepoRoot finds the livehook module root: the nearest directory at or above the current
// one whose go.mod declares the livehook module.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("devenv: current directory: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		// The module line exactly: tools/ and tests/ are modules whose paths extend this one.
		if err == nil && slices.Contains(strings.Split(string(b), "\n"), "module "+ModulePath) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("devenv: no go.mod for %s at or above the current directory: run from inside the repository", ModulePath)
		}
		dir = parent
	}
}

// ModulePath is the Go module of the repository.
const ModulePath = "github.com/livehook/terraform-provider-livehook"

// Binaries are the paths of the built programs.
type Binaries struct {
	Dir      string // holds terraform-provider-livehook: the dev_overrides directory
	Provider string
	Archiver string
	Emulator string
}

// Build compiles the provider, the archiver and the emulator into binDir with a single
// `go build` (one link per program, the build cache does the rest). version is stamped into
// main.version. which limits the programs built ("provider", "archiver", "emulator"); none
// means all three.
func Build(ctx context.Context, root, binDir, version string, which ...string) (Binaries, error) {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("devenv: create %s: %w", binDir, err)
	}
	abs, err := filepath.Abs(binDir)
	if err != nil {
		return Binaries{}, fmt.Errorf("devenv: %s: %w", binDir, err)
	}
	b := Binaries{
		Dir:      abs,
		Provider: filepath.Join(abs, "terraform-provider-livehook"),
		Archiver: filepath.Join(abs, "archiver"),
		Emulator: filepath.Join(abs, "live-emulator"),
	}
	pkgs := map[string]string{"provider": ".", "archiver": "./archiver", "emulator": "./internal/emulator/cmd/live-emulator"}
	if len(which) == 0 {
		which = []string{"provider", "archiver", "emulator"}
	}
	if version == "" {
		version = "dev"
	}
	// -o DIR/ names each binary after its package directory (the module root's after the
	// module path): terraform-provider-livehook, archiver, live-emulator.
	args := []string{"build", "-ldflags", "-X main.version=" + version, "-o", abs + string(filepath.Separator)}
	for _, w := range which {
		p, ok := pkgs[w]
		if !ok {
			return Binaries{}, fmt.Errorf("devenv: unknown program %q (want provider, archiver or emulator)", w)
		}
		args = append(args, p)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return Binaries{}, fmt.Errorf("devenv: build interrupted: %w", ctx.Err())
	}
	if err != nil {
		return Binaries{}, fmt.Errorf("devenv: go %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return b, nil
}

// Version describes the working tree for main.version: `git describe`, else "dev".
func Version(ctx context.Context, root string) string {
	cmd := exec.CommandContext(ctx, "git", "describe", "--tags", "--always", "--dirty")
	cmd.Dir = root
	out, err := cmd.Output()
	if v := strings.TrimSpace(string(out)); err == nil && v != "" {
		return v
	}
	return "dev"
}
