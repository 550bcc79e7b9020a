//go:build unix

package proc

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
	"syscall"
	"time"
)

const (
	defaultStartTimeout = 30 * time.Second
	defaultStopTimeout  = 10 * time.Second
)

// Spec describes a child process for Launch.
type Spec struct {
	Name     string   // short name for messages ("archiver")
	Path     string   // program
	Args     []string // arguments
	Env      []string // added to the current environment (later entries win)
	CleanEnv bool     // Env is the whole environment: nothing is inherited
	Dir      string   // working directory; "" = the current one
	Log      string   // stdout and stderr are appended to this file

	// Readiness, all optional and checked in this order. WaitListening: the program prints
	// "listening on http://ADDR" (plain or inside a JSON log line); Process.Addr and URL are
	// taken from it. HealthURL (may contain {addr}) must answer 2xx. Ready must return nil.
	WaitListening bool
	HealthURL     string
	Ready         func(ctx context.Context, p *Process) error
	StartTimeout  time.Duration // default 30s

	StopSignal  syscall.Signal // Shutdown's signal; default SIGTERM
	StopTimeout time.Duration  // Shutdown's grace before SIGKILL; default 10s
}

var listeningRE = regexp.MustCompile(`listening on (https?)://([0-9A-Za-z.\-\[\]:]+)`)

// Launch starts spec's program (see Start) and waits until it is ready, when spec names a
// readiness criterion. A program that exits or is not ready in time is stopped and the error
// quotes the last lines of its log.
func Launch(ctx context.Context, spec Spec) (*Process, error) {
	if spec.StartTimeout <= 0 {
		spec.StartTimeout = defaultStartTimeout
	}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	if spec.CleanEnv {
		cmd.Env = append([]string{}, spec.Env...)
	} else {
		cmd.Env = append(os.Environ(), spec.Env...)
	}
	p, err := Start(cmd, spec.Log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	if spec.Name != "" {
		p.Name = spec.Name
	}
	if spec.StopSignal != 0 {
		p.stopSig = spec.StopSignal
	}
	if spec.StopTimeout > 0 {
		p.stopTimeout = spec.StopTimeout
	}
	if !spec.WaitListening && spec.HealthURL == "" && spec.Ready == nil {
		return p, nil // a run to completion (terraform): nothing to wait for
	}
	if err := p.WaitReady(ctx, spec.StartTimeout, spec.ready); err != nil {
		_ = p.Shutdown()
		return nil, fmt.Errorf("%s did not start: %w\n%s", p.Name, err, p.LogTail(20))
	}
	return p, nil
}

// ready is one readiness probe of spec's criteria.
func (spec Spec) ready(ctx context.Context, p *Process) error {
	if spec.WaitListening && p.Addr == "" {
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			return err
		}
		m := listeningRE.FindSubmatch(b[min(p.logFrom, int64(len(b))):])
		if m == nil {
			return errors.New(`no "listening on" line yet`)
		}
		p.Addr = string(m[2])
		p.URL = string(m[1]) + "://" + p.Addr
	}
	if spec.HealthURL != "" {
		if err := healthy(ctx, strings.ReplaceAll(spec.HealthURL, "{addr}", p.Addr)); err != nil {
			return err
		}
	}
	if spec.Ready != nil {
		return spec.Ready(ctx, p)
	}
	return nil
}

var healthClient = &http.Client{Timeout: 2 * time.Second}

// healthy is nil when GET u answers 2xx.
func healthy(ctx context.Context, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("health URL %q: %w", u, err)
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}

// WaitReady calls ready until it returns nil, polling at a growing interval (10ms to 100ms). It
// fails when the process exits first, when timeout passes (quoting ready's last error) or when
// ctx ends.
func (p *Process) WaitReady(ctx context.Context, timeout time.Duration, ready func(context.Context, *Process) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		if !p.Running() {
			return fmt.Errorf("exited early (%v)", p.Err())
		}
		if last = ready(ctx, p); last == nil {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-p.done:
			t.Stop()
			return fmt.Errorf("exited early (%v)", p.Err())
		case <-ctx.Done():
			t.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("not ready after %s (last: %v)", timeout, last)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Shutdown ends the process gracefully: its stop signal (SIGTERM unless Spec.StopSignal says
// otherwise), SIGKILL for the group after the stop timeout. It returns nil when the program
// exited with status 0 or of that signal; an error wrapping ErrKilled when it had to be killed;
// an error when it had exited by itself before. Calling it again returns the first result.
func (p *Process) Shutdown() error {
	p.shutOnce.Do(func() { p.shutErr = p.shutdown() })
	return p.shutErr
}

func (p *Process) shutdown() error {
	if !p.Running() {
		_ = p.Kill() // sweep anything it left in its group
		return p.exitError("exited before it was stopped")
	}
	if err := p.Stop(context.Background(), p.stopSig, p.stopTimeout); err != nil {
		return err
	}
	return p.exitError("")
}

// exitError accepts a clean exit and death by the stop signal as success.
func (p *Process) exitError(what string) error {
	err := p.Err()
	if err == nil {
		if what != "" {
			return errors.New(what + " (status 0)")
		}
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == p.stopSig {
			return nil
		}
	}
	if what != "" {
		return fmt.Errorf("%s: %w", what, err)
	}
	return err
}

// LogTail returns the last n lines of the process's log, indented, for error messages.
func (p *Process) LogTail(n int) string { return LogTail(p.logPath, n) }

// logTailBytes bounds what LogTail reads of a long log.
const logTailBytes = 64 << 10

// LogTail returns the last n lines of the file at path, each prefixed "    | ", under a line
// naming the file: the form every harness error quotes a log in.
func LogTail(path string, n int) string {
	s, err := Tail(path, logTailBytes)
	if err != nil {
		return fmt.Sprintf("    (no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight([]byte(s), "\n"), []byte("\n"))
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

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	}
	return sig.String()
}
