package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMissingFailsInCI runs a test that calls Missing in a child with and
// without AGENTCOM_CI=1: skipped without, failed with.
func TestMissingFailsInCI(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		return
	}
	for _, c := range []struct {
		ci     string
		fail   bool
		output string
	}{{"", false, "SKIP: TestChildMissing"}, {"1", true, "FAIL: TestChildMissing"}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildMissing$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", CIEnv+"="+c.ci)
		out, err := cmd.CombinedOutput()
		if (err != nil) != c.fail || !strings.Contains(string(out), c.output) {
			t.Errorf("%s=%q: err %v, output:\n%s", CIEnv, c.ci, err, out)
		}
	}
}

func TestChildMissing(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") != "1" {
		t.Skip("child of TestMissingFailsInCI")
	}
	Missing(t, "a thing", "install it")
}

func TestEventuallyPolls(t *testing.T) {
	n := 0
	Eventually(t, "three looks", func() bool { n++; return n == 3 }, Every(time.Millisecond))
	if n != 3 {
		t.Fatalf("looked %d times", n)
	}
}

func TestEventuallyFailsNamingWhat(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Eventually(ft, "never", func() bool { return false }, Within(5*time.Millisecond), Every(time.Millisecond))
	}()
	<-done
	if !strings.Contains(ft.msg, "waiting for never") {
		t.Fatalf("message %q", ft.msg)
	}
}

// fatalRecorder records Fatalf and ends the goroutine as testing does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
