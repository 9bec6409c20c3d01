//go:build !unix

package sidecar

import "os/exec"

func ownProcessGroup(*exec.Cmd) {}

func shellCommand(s string) []string { return []string{"cmd.exe", "/C", s} }
