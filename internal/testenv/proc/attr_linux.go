//go:build linux

package proc

import "syscall"

// Own process group (signalled as a whole) and SIGKILL when the parent dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
