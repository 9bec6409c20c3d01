package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/powerloss"
)

// TestPowerLossKeepsMessagesPushedToOnlineAgents: direct messages to an
// agent that is connected but reads slowly (a tiny receive buffer, and it
// stops reading after identify), so pushes wait in the hub's send queue.
// The hub runs under the powerloss tracer and loses its power while
// messages are acknowledged. Every message answered "sent" must then be
// in the frames the agent's socket still yields, or in its mailbox once
// the hub is back: a push in a dead hub's memory is no delivery.
func TestPowerLossKeepsMessagesPushedToOnlineAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns hub processes")
	}
	dir := t.TempDir()
	setup, err := hub.New(crashConfig(dir, "127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := setup.Tokens.Create("admin", auth.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	agentTok, err := setup.Tokens.Create("reader", auth.RoleAgent)
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChildHub$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashAddrEnv+"=127.0.0.1:0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := powerloss.StartT(t, cmd, dir)
	addr := childAddr(t, out, p.Exited())

	// The reader's socket takes little before TCP pushes back.
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	hc := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(1 << 20)
	b, _ := json.Marshal(map[string]any{"type": "identify", "agent_id": "reader", "token": agentTok, "name": "reader",
		"capabilities": []string{}, "client_type": "sidecar", "protocol_version": 1})
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(`"identified"`)) {
			break
		}
	}

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	pad := string(bytes.Repeat([]byte("x"), 63000)) // a payload near the cap: the socket fills in a few frames
	var mu sync.Mutex
	var acked []string
	enough := make(chan struct{})
	var once sync.Once
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				body, _ := json.Marshal(map[string]any{"to": "reader", "payload": map[string]any{"n": n, "w": w, "pad": pad}})
				req, _ := http.NewRequest("POST", "http://"+addr+"/api/message", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+admin)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return // the power went
				}
				var m map[string]any
				err = json.NewDecoder(resp.Body).Decode(&m)
				resp.Body.Close()
				if id, _ := m["id"].(string); err == nil && resp.StatusCode == http.StatusOK && id != "" {
					mu.Lock()
					acked = append(acked, id)
					if len(acked) >= 90 {
						once.Do(func() { close(enough) })
					}
					mu.Unlock()
				}
			}
		})
	}
	select {
	case <-enough:
	case <-time.After(90 * time.Second):
		close(stop)
		t.Fatal("messages too slow")
	}
	st, err := p.Crash()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}

	// What the kernel still holds for the socket reached the agent.
	have := map[string]bool{}
	pushed := 0
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			break
		}
		var f struct {
			Type string `json:"type"`
			ID   string `json:"id"`
		}
		if json.Unmarshal(data, &f) == nil && f.Type == "message" {
			have[f.ID] = true
			pushed++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("power cut after %d messages acknowledged, %d read from the socket: %+v", len(acked), pushed, st)

	h := hubtest.Start(t, dir)
	_, box := h.Do("GET", "/api/mailbox/reader", admin, nil)
	msgs, _ := box["messages"].([]any)
	for _, m := range msgs {
		have[m.(map[string]any)["id"].(string)] = true
	}
	if len(acked) > 100 {
		t.Fatalf("%d acknowledged: more than a mailbox holds, the test cannot tell", len(acked))
	}
	lost := 0
	for _, id := range acked {
		if !have[id] {
			if lost++; lost <= 5 {
				t.Errorf("acknowledged message %s neither read from the socket nor in the mailbox", id)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged messages lost", lost, len(acked))
	}
}
