package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
)

// asMainEnv makes the test binary run main() with its arguments, so tests
// can drive the real command in its own process (signals, exit codes).
const asMainEnv = "AGENTCOM_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestServeExitsZeroOnSIGTERM: README says SIGTERM stops the hub
// gracefully: sockets are closed with 1001, every table is flushed and
// closed, and the process exits 0. What was written before is there
// when a hub opens the same data directory again.
func TestServeExitsZeroOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns the hub")
	}
	dir := t.TempDir()
	setup, err := hub.New(hub.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := setup.Tokens.Create("ops", auth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "serve", "--addr", "127.0.0.1:0", "--data", dir, "--log-format", "json")
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addrCh := make(chan string, 1)
	var lines []string // the child's stderr, read by the goroutine until exited
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if _, rest, ok := strings.Cut(sc.Text(), " listening on "); ok {
				addrCh <- strings.Fields(rest)[0]
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	var addr string
	select {
	case addr = <-addrCh:
	case err := <-exited:
		t.Fatalf("serve exited before listening: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if code, out, errs := runCmd(t, map[string]string{"AGENTCOM_HUB": "http://" + addr, "AGENTCOM_TOKEN": admin},
		"task", "submit", "before the stop"); code != 0 {
		t.Fatalf("submit: %d %s %s", code, out, errs)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, _, err = ws.Read(ctx)
	if code := websocket.CloseStatus(err); code != protocol.CloseGoingAway {
		t.Fatalf("socket closed with %d (%v), want 1001", code, err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v, want exit 0; its stderr:\n%s", err, strings.Join(lines, "\n"))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	// The tables were closed (bbolt's lock is free) and hold the task.
	again := hubtest.Start(t, dir)
	_, list := again.Do("GET", "/api/tasks", again.AdminToken, nil)
	if list["count"] != float64(1) {
		t.Fatalf("after a graceful stop: %v", list)
	}
}
