//go:build linux

package main

import (
	"os/exec"
	"syscall"
)

// dieWithBench has Linux send the process SIGTERM when the bench dies,
// however it dies (SIGKILL, or SIGPIPE when its output is piped to a
// program that stopped reading): the systems it started would otherwise
// keep running, holding ports and taking the cores from the next run. Linux
// ties the signal to the thread that started the process, which Go only
// ends for a goroutine that locked it (go.dev/issue/27505); the bench locks
// none.
func dieWithBench(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}
