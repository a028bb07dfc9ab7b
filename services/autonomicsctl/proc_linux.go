package main

import "syscall"

// sysProcAttr puts a child in its own process group, so that a Ctrl-C in
// the terminal reaches only autonomicsctl, which then stops the children
// in order, and has the kernel stop the child if autonomicsctl dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
