package hub_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
)

// TestIdleSocketClosed4003: a socket that sends no frame at all for the
// idle timeout (60 s) is closed with 4003, and not a moment before. The
// socket server's clock is injected; the reaper is driven by hand.
func TestIdleSocketClosed4003(t *testing.T) {
	clk := newFakeClock()
	h := hubtest.Start(t, "", func(c *hub.Config) {
		c.Socket.Now = clk.Now
		c.Socket.ReapInterval = time.Hour // only the explicit Reap calls below
	})
	silent := hubtest.Dial(t, h.WSURL())
	talker := hubtest.Dial(t, h.WSURL())
	ping := func(c *hubtest.Client) {
		t.Helper()
		c.Send(`{"type":"ping"}`) // answered before identify; any frame counts
		c.Expect("pong")
	}
	ping(silent)
	ping(talker)
	// Exactly the idle timeout: not idle yet. A socket closed here would
	// not answer the ping that follows.
	clk.Advance(time.Minute)
	h.Sockets.Reap()
	ping(silent)
	clk.Advance(time.Minute)
	ping(talker)
	clk.Advance(time.Millisecond) // silent: 60 s + 1 ms without a frame; talker: 1 ms
	h.Sockets.Reap()
	if code, reason := silent.Closed(10 * time.Second); code != protocol.CloseIdle {
		t.Fatalf("idle socket closed %d %q, want 4003", code, reason)
	}
	ping(talker)
}

// TestSlowConsumerClosed4005: an agent that stops reading while frames
// keep coming is disconnected with 4005 once its send queue is full,
// instead of holding memory or blocking the sender.
func TestSlowConsumerClosed4005(t *testing.T) {
	// The hub logs slow_consumer as it starts the close; the test starts
	// reading then, so the close frame behind the backlog gets through.
	logs := &signalWriter{want: `"event":"slow_consumer"`, seen: make(chan struct{})}
	h := hubtest.Start(t, "", func(c *hub.Config) { c.Socket.SendBuffer = 4 }, hubtest.WithJSONLog(logs))
	tok := h.Token("slow", "agent")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, h.WSURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	ws.SetReadLimit(8 << 20)
	id, _ := json.Marshal(map[string]any{"type": "identify", "agent_id": "slow", "token": tok, "name": "slow",
		"capabilities": []string{}, "client_type": "sidecar", "protocol_version": 1})
	if err := ws.Write(ctx, websocket.MessageText, id); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(ctx); err != nil || !strings.Contains(string(b), `"identified"`) {
		t.Fatalf("identify: %s %v", b, err)
	}
	// From here "slow" reads nothing. Large messages fill the kernel's
	// socket buffers, then the hub's send queue.
	sender := h.Agent("sender")
	// Payloads are capped at 64 KiB (messaging.MaxPayloadBytes): many
	// messages just under it.
	big := strings.Repeat("x", 60<<10)
	sent := 0
flood:
	for ; sent < 2000; sent++ {
		select {
		case <-logs.seen:
			break flood
		default:
		}
		sender.Send(map[string]any{"type": "message", "to": "slow", "payload": map[string]any{"blob": big}})
		sender.Expect("message_sent")
	}
	select {
	case <-logs.seen:
	case <-time.After(10 * time.Second):
		t.Fatalf("the slow consumer was never disconnected (%d large messages sent)", sent)
	}
	// Reading now drains what was buffered, then the close frame.
	for {
		if _, _, err = ws.Read(ctx); err != nil {
			break
		}
	}
	if code := websocket.CloseStatus(err); code != protocol.CloseSlowConsumer {
		t.Fatalf("slow consumer closed with %d (%v), want 4005", code, err)
	}
}

// signalWriter closes seen when a written line contains want.
type signalWriter struct {
	want string
	seen chan struct{}
	once sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}
