package store

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/agentcom/agentcom/internal/powerloss"
)

// TestPowerLossKeepsAcknowledgedWrites runs the crash writer child (see
// TestCrashDuringWrites) under the powerloss tracer, which undoes every
// write not yet fsynced when it "cuts the power". A SIGKILL alone leaves
// the page cache intact; this test is the one that fails when a commit is
// acknowledged before it is synced (try bbolt's NoSync = true in
// table.go).
func TestPowerLossKeepsAcknowledgedWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDuringWrites$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := powerloss.StartT(t, cmd, dir)

	acked := ackState{keys: map[string]string{}, last: map[int]int{}}
	crashed, total := false, 0
	var st powerloss.Stats
	var crashErr error
	scanAcks(out, acked, func(lines int) {
		total = lines
		if !crashed && lines >= 400 {
			crashed = true
			st, crashErr = p.Crash()
		}
	})
	if crashErr != nil {
		t.Fatal(crashErr)
	}
	if !crashed {
		t.Fatalf("child ended after %d acknowledgements", total)
	}
	t.Logf("power cut after %d acknowledgements: %+v", total, st)
	if st.Syncs == 0 {
		t.Errorf("no fsync seen in %d writes: acknowledged commits are not synced", st.Writes)
	}

	inFlight := map[string]string{}
	for w, i := range acked.last {
		k, want := childOp(w, i+1)
		inFlight[k] = want
	}
	tb, err := OpenTable("t", filepath.Join(dir, "t.db"), Options{})
	if err != nil {
		t.Fatalf("reopen after power loss: %v", err)
	}
	defer tb.Close()
	if err := tb.Check(); err != nil {
		t.Fatalf("check after power loss: %v", err)
	}
	holds := func(got []byte, want string) bool {
		if want == "" {
			return got == nil
		}
		return bytes.HasPrefix(got, []byte(want))
	}
	lost := 0
	for k, want := range acked.keys {
		got := mustGet(t, tb, []byte(k))
		if holds(got, want) {
			continue
		}
		if alt, ok := inFlight[k]; ok && holds(got, alt) {
			continue
		}
		if lost++; lost <= 3 {
			t.Errorf("acknowledged state of %s lost in the power cut: have %.30q, want %q", k, got, want)
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged keys lost", lost, len(acked.keys))
	}
}
