package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/agentcom/agentcom/internal/hub"
)

// TestServeExitsNonZeroWhenTheLoadFails: serve listens before it loads;
// a load that fails (here the data directory is held by another hub)
// still ends the process with the error and a non-zero exit.
func TestServeExitsNonZeroWhenTheLoadFails(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns the hub")
	}
	dir := t.TempDir()
	holder, err := hub.New(hub.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Shutdown(context.Background()) })

	cmd := exec.Command(os.Args[0], "serve", "--addr", "127.0.0.1:0", "--data", dir, "--log-format", "json")
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("serve on a held data directory: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "loading on 127.0.0.1:") || !strings.Contains(string(out), "stop the other hub first") {
		t.Fatalf("serve's output does not say it listened and why it stopped:\n%s", out)
	}
}
