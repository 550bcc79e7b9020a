package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/livehook/terraform-provider-livehook/internal/ctxsleep"
	lproc "github.com/livehook/terraform-provider-livehook/internal/testenv/proc"
)

// proc is one target process, started in its own process group (so a Ctrl-C in the terminal
// reaches only the bench, which then stops it in order) and killed with the bench if it dies
// (Pdeathsig).
type proc struct {
	*lproc.Process
	name string
}

func startProc(name, path string, args, env []string, logPath string) (*proc, error) {
	// A fresh log per run: lproc.Start appends.
	if err := os.Remove(logPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: log file: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	p, err := lproc.Start(cmd, logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &proc{Process: p, name: name}, nil
}

func (p *proc) pid() int { return p.PID() }

// exitCode is the process's exit status (-1 when killed by a signal or still running).
func (p *proc) exitCode() int { return p.ExitCode() }

// terminate sends SIGTERM and waits up to timeout for the exit; past that it kills the group.
// It returns how long the process took to exit after the signal.
// Cancelling ctx (Ctrl-C) kills it at once.
func (p *proc) terminate(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	if !p.Running() {
		return 0, fmt.Errorf("%s had already exited: %v; log: %s", p.name, p.Err(), p.logTail())
	}
	t0 := time.Now()
	err := p.Stop(ctx, timeout)
	switch {
	case err == nil:
		return p.Exited().Sub(t0), nil
	case errors.Is(err, lproc.ErrKilled):
		return time.Since(t0), fmt.Errorf("%s did not exit within %s of SIGTERM (killed); log:\n%s", p.name, timeout, p.logTail())
	default:
		return time.Since(t0), fmt.Errorf("%s killed while draining: %w", p.name, err)
	}
}

// kill SIGKILLs the whole process group and waits; safe to call more than once.
func (p *proc) kill() { _ = p.Kill() }

// logTail returns the last lines of the process's log, for error messages.
func (p *proc) logTail() string {
	b, err := p.Tail(1500)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return strings.TrimSpace(b)
}

// freePort asks the kernel for a free 127.0.0.1 port. Another process could take it before the
// target binds it; for a benchmark that race is accepted (the start fails loudly).
func freePort() (string, error) { return lproc.FreeAddr() }

// waitReady polls GET /readyz until the target answers anything but 503 (a 404 means the
// target has no readiness endpoint and is up), the process exits, or timeout passes.
func waitReady(ctx context.Context, p *proc, addr string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if !p.Running() {
			return fmt.Errorf("%s exited before it was ready (%v); log:\n%s", p.name, p.Err(), p.logTail())
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready on %s after %s (last: %s); log:\n%s", p.name, addr, timeout, last, p.logTail())
		}
		if err := ctxsleep.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// memStatus reads VmRSS and VmHWM (peak RSS) of pid from /proc, in bytes.
func memStatus(pid int) (rss, hwm int64, err error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		var dst *int64
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			dst = &rss
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			dst = &hwm
		default:
			continue
		}
		fields := bytes.Fields(line[6:])
		if len(fields) < 1 {
			continue
		}
		kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse %q: %w", line, err)
		}
		*dst = kb * 1024
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if hwm == 0 {
		return rss, hwm, errors.New("no VmHWM in /proc status")
	}
	return rss, hwm, nil
}

// rssSampler records the maximum VmRSS of a process, sampled every interval until stopped.
type rssSampler struct {
	max  atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if rss, _, err := memStatus(pid); err == nil && rss > s.max.Load() {
				s.max.Store(rss)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the maximum seen.
func (s *rssSampler) Stop() int64 {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	return s.max.Load()
}
