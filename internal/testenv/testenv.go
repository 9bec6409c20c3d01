// Package testenv decides what a test does when something it needs from
// the machine is missing (a browser, ptrace for the power-loss tracer, a
// service): on a developer's machine it skips with a message; in CI
// (AGENTCOM_CI=1, set by .ci/run) it fails, so CI cannot be green without
// having run the test.
package testenv

import (
	"os"
	"testing"
)

// CIEnv is the variable .ci/run sets.
const CIEnv = "AGENTCOM_CI"

// CI reports whether missing requirements must fail tests.
func CI() bool { return os.Getenv(CIEnv) == "1" }

// Missing skips t because what is missing, or fails it in CI. hint says
// how to provide it.
func Missing(t testing.TB, what, hint string) {
	t.Helper()
	if CI() {
		t.Fatalf("%s is missing and %s=1 requires it (%s)", what, CIEnv, hint)
	}
	t.Skipf("%s is missing (%s): skipped; %s=1 makes this a failure", what, hint, CIEnv)
}
