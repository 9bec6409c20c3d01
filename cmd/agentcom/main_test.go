package main

import (
	"os"
	"testing"

	"github.com/agentcom/agentcom/internal/testenv"
)

// TestMain runs main() itself when asMainEnv is set (serve_test.go drives
// the real command in its own process). Otherwise it runs the tests and
// checks that every goroutine a command started is gone. Idle keep-alive
// connections of the HTTP clients are pooled by net/http and are not the
// commands' own.
func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
		return
	}
	testenv.VerifyNone(m, testenv.IdleHTTPClients()...)
}
