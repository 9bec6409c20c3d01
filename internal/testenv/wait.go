package testenv

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// waitOpts are Eventually's bounds.
type waitOpts struct {
	timeout, poll time.Duration
}

// Opt changes how long Eventually waits and how often it looks.
type Opt func(*waitOpts)

// Within bounds the wait at d (default 10 s).
func Within(d time.Duration) Opt { return func(o *waitOpts) { o.timeout = d } }

// Every polls every d (default 10 ms).
func Every(d time.Duration) Opt { return func(o *waitOpts) { o.poll = d } }

// Eventually polls cond until it holds, and fails t naming what it waited
// for when the bound passes first. It is for state with no signal to wait
// on (another process, a polled HTTP view); where a channel or a
// startstop signal exists, tests wait on that instead.
func Eventually(t testing.TB, what string, cond func() bool, opts ...Opt) {
	t.Helper()
	o := waitOpts{timeout: 10 * time.Second, poll: 10 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	deadline := time.Now().Add(o.timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", o.timeout, what)
		}
		time.Sleep(o.poll)
	}
}

// IdleHTTPClients ignores the goroutines net/http keeps for pooled
// keep-alive client connections: the transport's, not the code under
// test's.
func IdleHTTPClients() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	}
}

// VerifyNone runs a package's tests and fails the run when any goroutine
// they started is still running at the end. Every package that starts
// goroutines calls it from its TestMain; extra options ignore what a
// package knowingly leaves behind.
func VerifyNone(m *testing.M, opts ...goleak.Option) {
	goleak.VerifyTestMain(m, opts...)
}
