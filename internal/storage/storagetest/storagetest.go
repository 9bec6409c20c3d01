// Package storagetest is the conformance suite of the storage drivers, in
// the spirit of River's riverdrivertest: every driver runs the same tests,
// so the embedded and the PostgreSQL driver cannot drift apart. A driver's
// package calls Run from a test with a function that opens a fresh, empty
// driver.
package storagetest

import (
	"testing"

	"github.com/agentcom/agentcom/internal/storage"
)

// Opener opens a new, empty driver for one test; the driver is closed by
// the test's cleanup.
type Opener func(t *testing.T) storage.Driver

// Run runs the whole suite against the driver open returns.
func Run(t *testing.T, open Opener) {
	t.Run("Tasks", func(t *testing.T) { runTasks(t, open) })
	t.Run("Messages", func(t *testing.T) { runMessages(t, open) })
	t.Run("Tokens", func(t *testing.T) { runTokens(t, open) })
	t.Run("Settings", func(t *testing.T) { runSettings(t, open) })
	t.Run("PushSubscriptions", func(t *testing.T) { runPushSubscriptions(t, open) })
	t.Run("Series", func(t *testing.T) { runSeries(t, open) })
}
