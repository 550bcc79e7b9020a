package devenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
)

// Spec describes a long-running subprocess.
type Spec struct {
	Name string   // short name for messages and the log file ("archiver")
	Path string   // program
	Args []string // arguments
	Env  []string // added to the current environment (later entries win)
	Dir  string   // working directory; "" = the Env's

	// Readiness: with WaitListening the process must print "listening on http://ADDR"
	// (plain or inside a JSON log line); Addr is then taken from it. With HealthURL
	// (may contain {addr}) the URL must answer 2xx. Both may be set.
	WaitListening bool
	HealthURL     string
	StartTimeout  time.Duration // default 30s
	StopTimeout   time.Duration // SIGTERM grace before SIGKILL; default 10s
}

// Process is a started subprocess in its own process group.
type Process struct {
	Name    string
	Addr    string // host:port from the "listening on" line
	URL     string // "http://" + Addr
	LogPath string

	proc        *proc.Process
	stopTimeout time.Duration
	stopOnce    sync.Once
	stopErr     error
}

var listeningRE = regexp.MustCompile(`listening on (https?)://([0-9A-Za-z.\-\[\]:]+)`)

// Start runs spec, its stdout and stderr appended to <Env.Dir>/logs/<name>.log, waits until
// it is ready and registers its Stop on the cleanup stack. A process that exits or does not
// become ready in time is stopped and the error shows the last lines of its log.
func (e *Env) Start(ctx context.Context, spec Spec) (*Process, error) {
	if spec.StartTimeout <= 0 {
		spec.StartTimeout = 30 * time.Second
	}
	if spec.StopTimeout <= 0 {
		spec.StopTimeout = 10 * time.Second
	}
	p, err := e.spawn(spec)
	if err != nil {
		return nil, err
	}
	e.Defer(spec.Name, p.Stop)
	if err := p.waitReady(ctx, spec); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("%s did not start: %w\n%s", spec.Name, err, p.Tail(20))
	}
	return p, nil
}

func (e *Env) spawn(spec Spec) (*Process, error) {
	if err := os.MkdirAll(e.Path("logs"), 0o755); err != nil {
		return nil, fmt.Errorf("devenv: %w", err)
	}
	logPath := e.Path("logs", spec.Name+".log")
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	if cmd.Dir == "" {
		cmd.Dir = e.Dir
	}
	cmd.Env = append(os.Environ(), spec.Env...)
	// Own process group: Ctrl-C in the terminal reaches only us, and we stop the whole
	// group (the program and anything it started) ourselves.
	pp, err := proc.Start(cmd, logPath)
	if err != nil {
		return nil, fmt.Errorf("devenv: %s: %w", spec.Name, err)
	}
	return &Process{Name: spec.Name, LogPath: logPath, proc: pp, stopTimeout: spec.StopTimeout}, nil
}

func (p *Process) waitReady(ctx context.Context, spec Spec) error {
	ctx, cancel := context.WithTimeout(ctx, spec.StartTimeout)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-p.proc.Done():
			return fmt.Errorf("exited early (%v)", p.proc.Err())
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("not ready after %s", spec.StartTimeout)
			}
			return ctx.Err()
		case <-tick.C:
		}
		if spec.WaitListening && p.Addr == "" {
			b, _ := os.ReadFile(p.LogPath)
			m := listeningRE.FindSubmatch(b)
			if m == nil {
				continue
			}
			p.Addr = string(m[2])
			p.URL = string(m[1]) + "://" + p.Addr
		}
		if spec.HealthURL != "" {
			u := strings.ReplaceAll(spec.HealthURL, "{addr}", p.Addr)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return fmt.Errorf("health URL %q: %w", u, err)
			}
			resp, err := client.Do(req)
			if err != nil {
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				continue
			}
		}
		return nil
	}
}

// PID is the process ID (also its process group ID).
func (p *Process) PID() int { return p.proc.PID() }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.proc.Done() }

// ExitCode is the exit status once the process has exited (-1 while running or when a signal
// ended it).
func (p *Process) ExitCode() int { return p.proc.ExitCode() }

// Kill SIGKILLs the process group, like a crash, and waits for it.
func (p *Process) Kill() error { return p.proc.Kill() }

// Stop sends SIGTERM to the process group, waits up to the stop timeout, then SIGKILLs the
// group and waits. It returns nil when the program exited on SIGTERM (status 0 or killed by
// it). Calling it again returns the first result.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.stop() })
	return p.stopErr
}

func (p *Process) stop() error {
	if !p.proc.Running() {
		// Already gone: sweep anything it left in its group.
		_ = p.proc.Kill()
		return exitError(p.proc.Err(), "exited before it was stopped")
	}
	if err := p.proc.Stop(context.Background(), p.stopTimeout); err != nil {
		return err
	}
	return exitError(p.proc.Err(), "")
}

// exitError accepts a clean exit and death by SIGTERM as success.
func exitError(err error, what string) error {
	if err == nil {
		if what != "" {
			return errors.New(what + " (status 0)")
		}
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	if what != "" {
		return fmt.Errorf("%s: %w", what, err)
	}
	return err
}

// Tail returns the last n lines of the process's log, indented, for error messages.
func (p *Process) Tail(n int) string {
	return TailFile(p.LogPath, n)
}

// TailFile returns the last n lines of a file, each prefixed "    | ".
func TailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("    (no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "    last lines of %s:\n", path)
	for _, l := range lines {
		sb.WriteString("    | ")
		sb.Write(l)
		sb.WriteByte('\n')
	}
	return strings.TrimRight(sb.String(), "\n")
}
