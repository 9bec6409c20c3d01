package agentws

import (
	"testing"

	"go.uber.org/goleak"
)

// Every socket's writer, pinger and relay goroutine is gone once the
// tests' hubs are shut down.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
