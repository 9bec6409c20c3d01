package agentws_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/hubtest"
	"github.com/agentcom/agentcom/internal/protocol"
)

// BenchmarkIdleConnMemory opens n real identified sockets on loopback to
// a hub in this process and reports the Go memory (heap and stacks in
// use, after a GC) each holds: hub side and client side together, since
// both live here (the client side is a coder/websocket conn with its
// reader idle, no goroutine). The hub's RSS per socket is what
// `agentcom bench --scenario idle` measures in a child process.
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 500
	h := hubtest.Start(b, "")
	tok := h.Token("admin", auth.RoleAdmin)
	ctx := context.Background()
	for b.Loop() {
		before := memInUse()
		conns := make([]*websocket.Conn, 0, n)
		for i := range n {
			ws, _, err := websocket.Dial(ctx, h.WSURL(), nil)
			if err != nil {
				b.Fatal(err)
			}
			id := fmt.Sprintf("mem-%04d", i)
			frame := fmt.Sprintf(`{"type":"identify","agent_id":%q,"token":%q,"capabilities":[],"protocol_version":%d}`, id, tok, protocol.Version)
			if err := ws.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
				b.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, data, err := ws.Read(rctx)
			cancel()
			if err != nil {
				b.Fatalf("identify %s: %v %s", id, err, data)
			}
			conns = append(conns, ws)
		}
		// Let the presence windows pass, so the writers have stopped.
		time.Sleep(300 * time.Millisecond)
		b.ReportMetric(float64(memInUse()-before)/n, "bytes/conn")
		for _, ws := range conns {
			_ = ws.Close(websocket.StatusNormalClosure, "")
		}
	}
}

func memInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}
