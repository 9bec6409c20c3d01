package bench

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// Profiles names the pprof files to write for a run; empty names are
// skipped. They profile this process: with an in-process hub that is the
// hub and the load generator together (pprof's -focus separates them).
// For a heap profile with the idle scenario's connections open, see
// Options.HeapProfile.
type Profiles struct {
	CPU   string
	Mutex string
	Block string
	// Trace is a runtime execution trace (go tool trace): where each
	// goroutine waited, and for what, which a CPU profile cannot show
	// when the run is latency-bound rather than CPU-bound.
	Trace string
}

// Start begins the profiles and returns the function that writes them.
func (p Profiles) Start() (stop func() error, err error) {
	var cpu *os.File
	if p.CPU != "" {
		if cpu, err = os.Create(p.CPU); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	var tr *os.File
	if p.Trace != "" {
		if tr, err = os.Create(p.Trace); err != nil {
			if cpu != nil {
				pprof.StopCPUProfile()
				cpu.Close()
			}
			return nil, fmt.Errorf("trace: %w", err)
		}
		if err := trace.Start(tr); err != nil {
			tr.Close()
			if cpu != nil {
				pprof.StopCPUProfile()
				cpu.Close()
			}
			return nil, fmt.Errorf("trace: %w", err)
		}
	}
	if p.Mutex != "" {
		runtime.SetMutexProfileFraction(5)
	}
	if p.Block != "" {
		// One sample per 100 µs blocked: enough to find waits on locks,
		// fsyncs and channels without slowing the run much.
		runtime.SetBlockProfileRate(100_000)
	}
	return func() error {
		var errs []error
		if cpu != nil {
			pprof.StopCPUProfile()
			errs = append(errs, cpu.Close())
		}
		if tr != nil {
			trace.Stop()
			errs = append(errs, tr.Close())
		}
		errs = append(errs, writeProfile("mutex", p.Mutex), writeProfile("block", p.Block))
		return errors.Join(errs...)
	}, nil
}

func writeProfile(name, path string) error {
	if path == "" {
		return nil
	}
	if name == "heap" {
		runtime.GC()
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%s profile: %w", name, err)
	}
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("%s profile: %w", name, err)
	}
	return f.Close()
}
