//go:build unix

// Package proc is the one way the tests, benchmarks and demo run a child process (archiver,
// emulator, VersityGW, terraform): each in its own process group with its output in a log file,
// started and waited for until it is ready (Launch), stopped as a group so nothing it started is
// left behind, its log tail quoted in errors (LogTail).
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// killWait bounds the wait after SIGKILL: a process stuck in the kernel (D state) is reported,
// not waited for forever.
const killWait = 10 * time.Second

// ErrKilled is wrapped by Stop's error when the process outlived its grace period and was killed.
var ErrKilled = errors.New("killed")

// Process is a started child process, leader of its own process group.
type Process struct {
	Name string // for messages (Launch sets it)
	Addr string // host:port from its "listening on" line (Spec.WaitListening)
	URL  string // scheme://Addr

	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error     // from Wait; set before done is closed
	exited  time.Time // set before done is closed
	logFrom int64     // size of the log when this process started: its own output begins here

	stopSig     syscall.Signal // Shutdown's signal and grace (Spec.StopSignal, Spec.StopTimeout)
	stopTimeout time.Duration
	shutOnce    sync.Once
	shutErr     error
}

// Start starts cmd in a new process group with its stdout and stderr appended to logPath
// (created if missing). The child writes straight into the file (no pipe, no copying
// goroutine), so a grandchild holding the descriptor can never block the wait. On Linux the
// child gets SIGKILL when its parent dies, so a killed test binary leaves no server behind.
// Start sets cmd's Stdout, Stderr and SysProcAttr; the caller must not Wait on cmd.
func Start(cmd *exec.Cmd, logPath string) (*Process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	defer f.Close() // the child has its own copy
	// The log is appended to (a restarted server keeps its history), so this process's own
	// output starts at the current end: readiness must not find a previous run's address.
	from, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	p := &Process{Name: filepath.Base(cmd.Path), cmd: cmd, logPath: logPath, logFrom: from, done: make(chan struct{}),
		stopSig: syscall.SIGTERM, stopTimeout: defaultStopTimeout}
	go func() {
		p.err = cmd.Wait()
		p.exited = time.Now()
		close(p.done)
	}()
	return p, nil
}

// PID is the process ID, which is also its process group ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// LogPath is the file holding the process's stdout and stderr.
func (p *Process) LogPath() string { return p.logPath }

// Done is closed when the process has exited and been waited for.
func (p *Process) Done() <-chan struct{} { return p.done }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Err is the wait error (nil for exit status 0); meaningful once Done is closed.
func (p *Process) Err() error {
	if p.Running() {
		return nil
	}
	return p.err
}

// Exited is when the process was seen to exit; zero while it runs.
func (p *Process) Exited() time.Time {
	if p.Running() {
		return time.Time{}
	}
	return p.exited
}

// ExitCode is the exit status, -1 while running or when killed by a signal.
func (p *Process) ExitCode() int {
	if p.Running() || p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// signal sends sig to the whole group, so no helper the program started is orphaned.
func (p *Process) signal(sig syscall.Signal) {
	if err := syscall.Kill(-p.PID(), sig); err != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Stop sends sig (SIGTERM for servers, SIGINT for terraform) to the process group and waits up
// to grace for the process to exit; past that, or when ctx ends, it SIGKILLs the group and waits. Once the process is gone, whatever is
// left in its group is SIGKILLed too. It returns nil when the process exited within grace
// (whatever its status: see Err and ExitCode), an error wrapping ErrKilled when it had to be
// killed, or ctx's error. Stopping an exited process only sweeps its group.
func (p *Process) Stop(ctx context.Context, sig syscall.Signal, grace time.Duration) error {
	if !p.Running() {
		p.signal(syscall.SIGKILL)
		return nil
	}
	p.signal(sig)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		p.signal(syscall.SIGKILL)
		return nil
	case <-t.C:
		if err := p.Kill(); err != nil {
			return err
		}
		return fmt.Errorf("did not exit within %s of %s; %w", grace, signalName(sig), ErrKilled)
	case <-ctx.Done():
		_ = p.Kill()
		return ctx.Err()
	}
}

// Kill SIGKILLs the process group, like a crash, and waits for the process (at most 10s). It is
// safe to call more than once.
func (p *Process) Kill() error {
	p.signal(syscall.SIGKILL)
	t := time.NewTimer(killWait)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		return fmt.Errorf("process %d did not exit within %s of SIGKILL", p.PID(), killWait)
	}
}

// Tail returns the last n bytes of the file at path, reading only those.
func Tail(path string, n int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	off := max(st.Size()-int64(max(n, 0)), 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	return string(b), err
}

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago. Another process could
// take it before the caller's program binds it; callers retry or fail loudly. Prefer letting a
// server listen on 127.0.0.1:0 and report its address. The error is net's, unwrapped.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}
