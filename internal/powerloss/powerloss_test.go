package powerloss

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

const childEnv = "POWERLOSS_TEST_CHILD_DIR"

// TestMain lets the test binary act as the traced child.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		child(dir)
		return
	}
	os.Exit(m.Run())
}

// child writes synced.txt and fsyncs it, overwrites part of it without a
// sync, writes unsynced.txt without a sync, then reports and waits.
func child(dir string) {
	must := func(err error) {
		if err != nil {
			os.Stderr.WriteString("child: " + err.Error() + "\n")
			os.Exit(2)
		}
	}
	s, err := os.Create(filepath.Join(dir, "synced.txt"))
	must(err)
	_, err = s.WriteAt([]byte("durable-data"), 0)
	must(err)
	must(s.Sync())
	_, err = s.WriteAt([]byte("LOST"), 0) // after the sync: undone
	must(err)
	_, err = s.Write([]byte("+more")) // write(2) at offset 0 then grows nothing
	must(err)
	u, err := os.Create(filepath.Join(dir, "unsynced.txt"))
	must(err)
	_, err = u.Write([]byte("never synced"))
	must(err)
	must(os.WriteFile(filepath.Join(dir, "appended.txt"), []byte("x"), 0o600))
	os.Stdout.WriteString("written\n")
	select {}
}

func TestCrashUndoesUnsyncedWrites(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := StartT(t, cmd, dir)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "written\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	// Before the crash the page cache holds everything.
	if b, _ := os.ReadFile(filepath.Join(dir, "unsynced.txt")); string(b) != "never synced" {
		t.Fatalf("before crash: %q", b)
	}
	st, err := p.Crash()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", st)
	for name, want := range map[string]string{
		"synced.txt":   "durable-data",
		"unsynced.txt": "",
		"appended.txt": "",
	} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("%s after power loss = %q, want %q", name, b, want)
		}
	}
	if st.Syncs < 1 || st.UndoneWrite < 4 || st.Files != 3 {
		t.Errorf("stats %+v", st)
	}
}
