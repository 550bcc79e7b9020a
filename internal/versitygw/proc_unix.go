//go:build unix

package versitygw

import (
	"os/exec"
	"syscall"
)

// signalGroup signals the whole process group so no helper process is orphaned.
func signalGroup(cmd *exec.Cmd, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		_ = cmd.Process.Signal(sig)
	}
}
