//go:build unix

package proc

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startSh starts /bin/sh -c script in dir with PIDFILE set, and kills the group at cleanup.
func startSh(t *testing.T, dir, script string) *Process {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), "PIDFILE="+filepath.Join(dir, "pid"))
	p, err := Start(cmd, filepath.Join(dir, "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill() })
	return p
}

// startChild runs script (which writes a PID to $PIDFILE once its children run) and returns
// the process and that PID.
func startChild(t *testing.T, script string) (*Process, int) {
	t.Helper()
	dir := t.TempDir()
	p := startSh(t, dir, script)
	waitFile(t, p, filepath.Join(dir, "pid"))
	b, _ := os.ReadFile(filepath.Join(dir, "pid"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return p, pid
}

// waitFile waits for the shell to have written path (it has then started its children).
func waitFile(t *testing.T, p *Process, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			return
		}
		if !p.Running() || time.Now().After(deadline) {
			t.Fatalf("%s not written (running=%v); log: %q", path, p.Running(), mustTail(t, p))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// groupGone waits until no process (not even a zombie awaiting its reaper) is left in group pgid.
func groupGone(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(-pgid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has members", pgid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustTail(t *testing.T, p *Process) string {
	t.Helper()
	s, err := Tail(p.LogPath(), 4096)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		script   string
		grace    time.Duration
		killed   bool // Stop must report ErrKilled
		exitCode int
	}{
		{name: "exits on SIGTERM", script: `echo $$ >"$PIDFILE"; exec sleep 30`, grace: 10 * time.Second, exitCode: -1},
		{name: "grandchild dies with the group", script: `sleep 30 & echo $! >"$PIDFILE"; wait`, grace: 10 * time.Second, exitCode: -1},
		{name: "SIGTERM ignored: group killed after grace", script: `trap "" TERM; sleep 30 & echo $! >"$PIDFILE"; wait`, grace: 200 * time.Millisecond, killed: true, exitCode: -1},
		{name: "leader exits, grandchild ignoring SIGTERM is swept", script: `(trap "" TERM; sleep 30; :) & echo $! >"$PIDFILE"; wait`, grace: 10 * time.Second, exitCode: -1},
		{name: "clean exit on SIGTERM", script: `trap "exit 0" TERM; echo $$ >"$PIDFILE"; while :; do sleep 0.05; done`, grace: 10 * time.Second, exitCode: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, child := startChild(t, tt.script)
			err := p.Stop(context.Background(), syscall.SIGTERM, tt.grace)
			if got := errors.Is(err, ErrKilled); got != tt.killed || (!tt.killed && err != nil) {
				t.Fatalf("Stop = %v, want killed=%v", err, tt.killed)
			}
			if p.Running() {
				t.Fatal("Running after Stop")
			}
			if got := p.ExitCode(); got != tt.exitCode {
				t.Errorf("ExitCode = %d, want %d (wait error %v)", got, tt.exitCode, p.Err())
			}
			groupGone(t, p.PID())
			if err := syscall.Kill(child, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("child %d still exists after Stop (kill -0: %v)", child, err)
			}
			if err := p.Stop(context.Background(), syscall.SIGTERM, tt.grace); err != nil {
				t.Errorf("second Stop = %v, want nil", err)
			}
		})
	}
}

func TestStopContextCancelled(t *testing.T) {
	t.Parallel()
	p, _ := startChild(t, `trap "" TERM; echo $$ >"$PIDFILE"; exec sleep 30`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Stop(ctx, syscall.SIGTERM, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop = %v, want context.Canceled", err)
	}
	if p.Running() {
		t.Fatal("Running after Stop with a cancelled context")
	}
}

func TestKill(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		script string
	}{
		{name: "leader", script: `echo $$ >"$PIDFILE"; exec sleep 30`},
		{name: "grandchild", script: `sleep 30 & echo $! >"$PIDFILE"; wait`},
		{name: "already exited", script: `echo $$ >"$PIDFILE"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, child := startChild(t, tt.script)
			for i := range 2 { // safe to repeat
				if err := p.Kill(); err != nil {
					t.Fatalf("Kill #%d = %v", i+1, err)
				}
			}
			select {
			case <-p.Done():
			default:
				t.Fatal("Done not closed after Kill")
			}
			if p.Exited().IsZero() {
				t.Error("Exited is zero after Kill")
			}
			groupGone(t, p.PID())
			if err := syscall.Kill(child, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("child %d still exists after Kill (kill -0: %v)", child, err)
			}
		})
	}
}

func TestExitStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		script  string
		code    int
		wantErr bool
	}{
		{script: "exit 0", code: 0},
		{script: "exit 3", code: 3, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.script, func(t *testing.T) {
			t.Parallel()
			p := startSh(t, t.TempDir(), tt.script)
			<-p.Done()
			if got := p.ExitCode(); got != tt.code {
				t.Errorf("ExitCode = %d, want %d", got, tt.code)
			}
			if (p.Err() != nil) != tt.wantErr {
				t.Errorf("Err = %v, want error: %v", p.Err(), tt.wantErr)
			}
		})
	}
}

func TestOutputAppendedToLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "out.log")
	if err := os.WriteFile(log, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startSh(t, dir, `echo out; echo err >&2`)
	<-p.Done()
	if got, want := mustTail(t, p), "before\nout\nerr\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	if p.LogPath() != log {
		t.Errorf("LogPath = %q, want %q", p.LogPath(), log)
	}
}

func TestTail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("abcdef"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		n       int
		want    string
		wantErr bool
	}{
		{name: "last bytes", path: path, n: 3, want: "def"},
		{name: "more than the file", path: path, n: 100, want: "abcdef"},
		{name: "zero", path: path, n: 0, want: ""},
		{name: "negative", path: path, n: -1, want: ""},
		{name: "missing file", path: filepath.Join(dir, "missing"), n: 10, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Tail(tt.path, tt.n)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Tail(%q, %d) = %q, %v; want %q, error %v", tt.path, tt.n, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		cmd  *exec.Cmd
		log  string
		want string
	}{
		{name: "missing program", cmd: exec.Command(filepath.Join(dir, "nope")), log: filepath.Join(dir, "a.log"), want: "starting"},
		{name: "log directory missing", cmd: exec.Command("/bin/sh", "-c", "true"), log: filepath.Join(dir, "no", "a.log"), want: "log file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(tt.cmd, tt.log)
			if err == nil {
				_ = p.Kill()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestFreeAddr(t *testing.T) {
	t.Parallel()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("FreeAddr = %q (%v), want 127.0.0.1:<port>", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port from FreeAddr not usable: %v", err)
	}
	ln.Close()
}
