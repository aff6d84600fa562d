//go:build !unix

package pgtest

import "os/exec"

// setAccount is a no-op where there is no root to step down from.
func setAccount(*exec.Cmd, *account) {}

// setProcessGroup is a no-op where process groups do not exist.
func setProcessGroup(*exec.Cmd) {}
