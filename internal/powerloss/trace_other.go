//go:build !(linux && amd64)

package powerloss

import "os/exec"

type tracer struct{}

func start(*exec.Cmd, string) (*Process, error) { return nil, ErrUnsupported }

// Crash is unsupported here.
func (p *Process) Crash() (Stats, error) { return Stats{}, ErrUnsupported }

// Kill is unsupported here.
func (p *Process) Kill() {}
