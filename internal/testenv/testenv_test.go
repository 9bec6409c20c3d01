package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
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
