package store

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashChildEnv tells a re-executed test binary to act as the writer child.
const crashChildEnv = "STORE_CRASH_CHILD_DIR"

// TestCrashDuringWrites re-executes the test binary as a child that writes
// as fast as it can (8 writers, some values spanning several pages, some
// overwrites and deletes) and prints every acknowledged key. The parent
// kills it with SIGKILL mid-write, reopens the table and checks that every
// acknowledged write is there and the file verifies clean.
func TestCrashDuringWrites(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashWriterChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	rounds := 3
	if raceEnabled {
		rounds = 1
	}
	for round := range rounds {
		dir := t.TempDir()
		acked := runAndKill(t, dir, 1500+round*1000)
		// The operation each writer had in flight may or may not have
		// committed: its key may hold either state.
		inFlight := map[string]string{}
		for w, i := range acked.last {
			k, want := childOp(w, i+1)
			inFlight[k] = want
		}
		tb, err := OpenTable("t", filepath.Join(dir, "t.db"), Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		if err := tb.Check(); err != nil {
			t.Fatalf("round %d: check after kill: %v", round, err)
		}
		holds := func(got []byte, want string) bool {
			if want == "" {
				return got == nil
			}
			return bytes.HasPrefix(got, []byte(want))
		}
		for k, want := range acked.keys {
			got := mustGet(t, tb, []byte(k))
			if holds(got, want) {
				continue
			}
			if alt, ok := inFlight[k]; ok && holds(got, alt) {
				continue
			}
			t.Fatalf("round %d: acknowledged state of %s lost: have %.30q, want %q", round, k, got, want)
		}
		if err := tb.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := CheckFile(filepath.Join(dir, "t.db")); err != nil {
			t.Fatalf("round %d: CheckFile: %v", round, err)
		}
		t.Logf("round %d: %d acknowledged keys intact", round, len(acked.keys))
	}
}

// ackState is what the child acknowledged: per key the value prefix of
// its last acknowledged write ("" for a delete), and per writer the index
// of its last acknowledged operation.
type ackState struct {
	keys map[string]string
	last map[int]int
}

// childOp is the deterministic i-th operation of writer w: its key and the
// value prefix it leaves ("" for a delete).
func childOp(w, i int) (key, want string) {
	key = "w" + strconv.Itoa(w) + "-" + strconv.Itoa(i%400)
	if i%7 == 3 {
		return key, ""
	}
	return key, "v" + strconv.Itoa(i) + "."
}

// runAndKill starts the child, kills it after at least n acknowledgements
// and returns what it acknowledged.
func runAndKill(t *testing.T, dir string, n int) ackState {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDuringWrites$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	st := ackState{keys: map[string]string{}, last: map[int]int{}}
	killed := false
	scanAcks(out, st, func(lines int) {
		if !killed && lines >= n {
			killed = true
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	})
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before %d acknowledgements: %v", n, err)
	}
	return st
}

// scanAcks reads the child's lines "ack <writer> <op index>" (printed
// after Update returned nil) into st until EOF, calling each after every
// acknowledgement with the count so far. A line cut by a kill does not
// parse and is ignored.
func scanAcks(r io.Reader, st ackState, each func(lines int)) {
	sc := bufio.NewScanner(r)
	lines := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			continue
		}
		w, err1 := strconv.Atoi(f[1])
		i, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		k, want := childOp(w, i)
		st.keys[k] = want
		st.last[w] = max(st.last[w], i)
		lines++
		each(lines)
	}
}

// crashWriterChild writes until killed. Each writer runs its operations in
// order, one at a time, so at the kill at most its next operation (the one
// after its last acknowledged) can have committed unacknowledged.
func crashWriterChild(dir string) {
	tb, err := OpenTable("t", filepath.Join(dir, "t.db"), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	emit := func(w, i int) {
		mu.Lock()
		os.Stdout.WriteString("ack " + strconv.Itoa(w) + " " + strconv.Itoa(i) + "\n") // unbuffered
		mu.Unlock()
	}
	deadline := time.Now().Add(60 * time.Second) // never outlive a lost parent
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				k, want := childOp(w, i)
				var err error
				if want == "" {
					err = tb.Update(func(tx *Tx) error { return tx.Delete([]byte(k)) })
				} else {
					size := 50
					if i%11 == 0 {
						size = 9000 // spans pages
					}
					v := append([]byte(want), bytes.Repeat([]byte{'x'}, size)...)
					err = tb.Update(func(tx *Tx) error { return tx.Put([]byte(k), v) })
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, "child update:", err)
					os.Exit(4)
				}
				emit(w, i)
			}
		})
	}
	wg.Wait()
	os.Exit(3)
}
