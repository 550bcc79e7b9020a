//go:build linux

package versitygw

import "syscall"

// Own process group (signalled as a whole by Stop) and SIGKILL when the parent dies, so a test
// binary killed by a timeout does not leave a server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
