// Package testenv decides what a test does when something it needs from
// the machine is missing (a browser, ptrace for the power-loss tracer, a
// service): on a developer's machine it skips with a message; in CI
// (AGENTCOM_CI=1, set by .ci/run) it fails, so CI cannot be green without
// having run the test. It also has the settable clock tests inject.
package testenv

import (
	"os"
	"sync"
	"testing"
	"time"
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

// Clock is a settable clock for code that takes a func() time.Time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d (backwards when negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
