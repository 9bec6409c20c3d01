package main

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a command starts is gone when the tests end. Idle
// keep-alive connections of the HTTP clients are pooled by net/http and
// are not the commands' own.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}
