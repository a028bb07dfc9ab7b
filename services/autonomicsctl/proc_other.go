//go:build !linux

package main

import "syscall"

// sysProcAttr keeps the default process attributes where process groups
// and parent-death signals are not available.
func sysProcAttr() *syscall.SysProcAttr { return nil }
