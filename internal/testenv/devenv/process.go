package devenv

import (
	"context"
	"fmt"
	"os"

	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
)

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
