//go:build linux

package localserver

import (
	"os/exec"
	"syscall"
)

// setProcAttrs makes the server die with the process that started it, so a
// crashed or killed test binary leaves no server behind.
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
