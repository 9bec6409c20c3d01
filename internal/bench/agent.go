package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
	"github.com/coder/websocket"
)

// agent is one simulated agent: its own WebSocket connection speaking the
// sidecar's protocol. It holds one goroutine, the reader, which hands
// every frame to the scenario's handler; handlers answer from there.
type agent struct {
	id  string
	idx int // position in its fleet
	ws  *websocket.Conn
	on  handler
	// sets hold latency samples the handler records, one set per phase;
	// only the reader touches them while the phase runs.
	sets [2]latencies

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	err    error // why the reader stopped (after done)
}

// handler sees every frame an agent receives, with its arrival time and
// its type read from the frame. data is only valid during the call (the
// agent reads its next frame into the same buffer): a handler copies what
// it keeps.
type handler func(a *agent, typ string, data []byte, at time.Time)

// frame holds the parts of a hub frame the scenarios use.
type frame struct {
	Type       string `json:"type"`
	From       string `json:"from"`
	Error      string `json:"error"`
	TaskID     string `json:"task_id"`
	Status     string `json:"status"`
	Generation int64  `json:"generation"`
	Metadata   stamp  `json:"metadata"`
	Payload    stamp  `json:"payload"`
}

// stamp is what the bench puts in task metadata and message payloads: the
// send time in microseconds since the run's clock started (the same
// process reads it back, so no clock sync is involved) and a sequence.
type stamp struct {
	T0 int64 `json:"bench_t0"`
	N  int64 `json:"bench_n"`
}

// connectAgent dials the hub and identifies as id, returning once the hub
// said identified. Frames that arrive before it (presence of others) go
// to the handler too.
func connectAgent(ctx context.Context, client *http.Client, url string, idx int, id, token string, on handler) (*agent, error) {
	dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", id, err)
	}
	ws.SetReadLimit(16 << 20)
	a := &agent{id: id, idx: idx, ws: ws, on: on, done: make(chan struct{})}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	ident := identifyFrame(id, token)
	if err := ws.Write(dctx, websocket.MessageText, ident); err != nil {
		a.abort()
		return nil, fmt.Errorf("identify %s: %w", id, err)
	}
	for {
		_, data, err := ws.Read(dctx)
		if err != nil {
			a.abort()
			return nil, fmt.Errorf("identify %s: %w", id, err)
		}
		typ := frameType(data)
		if typ == protocol.OutIdentified {
			break
		}
		if typ == protocol.OutError {
			a.abort()
			return nil, fmt.Errorf("identify %s: hub answered %s", id, data)
		}
		if on != nil {
			on(a, typ, data, time.Now())
		}
	}
	go a.read()
	return a, nil
}

// read hands every frame to the handler. The frame is read into one
// buffer the agent reuses (the handlers copy what they keep): a fresh
// buffer per frame was a good part of the load's allocations, and the
// load shares the CPUs with the hub it measures.
func (a *agent) read() {
	defer close(a.done)
	// Not a.ctx: coder/websocket registers a context.AfterFunc for every
	// read whose context can end, allocations and locking per frame that
	// the load tool's 1,000 readers pay on the cores the hub uses. a.ctx
	// ends only in close and abort, which close the socket first, and
	// that ends the read.
	ctx := context.WithoutCancel(a.ctx)
	var buf bytes.Buffer
	for {
		_, r, err := a.ws.Reader(ctx)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			a.err = err
			return
		}
		data := buf.Bytes()
		if a.on != nil {
			a.on(a, frameType(data), data, time.Now())
		}
		if buf.Cap() > maxKeptFrameBuf {
			buf = bytes.Buffer{}
		}
	}
}

// maxKeptFrameBuf: a reader buffer grown past this by a large frame is
// let go rather than held for the rest of the run.
const maxKeptFrameBuf = 64 << 10

// send writes one frame.
func (a *agent) send(b []byte) error {
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	if err := a.ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("agent %s: send: %w", a.id, err)
	}
	return nil
}

// close ends the connection with a close handshake and waits for the
// reader to stop.
func (a *agent) close() {
	_ = a.ws.Close(websocket.StatusNormalClosure, "")
	a.cancel()
	<-a.done
}

// abort drops a connection whose reader never started.
func (a *agent) abort() {
	a.ws.CloseNow()
	a.cancel()
}

// gone reports whether the connection has ended.
func (a *agent) gone() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// closedByHub reports whether the reader stopped because the hub closed
// the socket (rather than the bench), with the code.
func (a *agent) closedByHub() (websocket.StatusCode, bool) {
	select {
	case <-a.done:
	default:
		return 0, false
	}
	if a.ctx.Err() != nil {
		return 0, false
	}
	return websocket.CloseStatus(a.err), true
}

// fleet is a set of connected agents.
type fleet struct {
	agents    []*agent
	closeOnce sync.Once
}

// connectFleet connects ids in parallel (ConnectWorkers at a time),
// counting them in connected as they identify. Agents already connected
// ping every PingInterval while the others connect: with thousands of
// agents that takes longer than the hub's idle timeout.
func (r *runner) connectFleet(ctx context.Context, t *target, ids []string, on handler, connected *atomic.Int64) (*fleet, error) {
	slots := make([]atomic.Pointer[agent], len(ids))
	stop := keepAlive(len(ids), func(i int) *agent { return slots[i].Load() }, r.o.PingInterval)
	err := parallel(ctx, len(ids), r.o.ConnectWorkers, func(i int) error {
		a, err := connectAgent(ctx, r.dial, t.wsURL(i), i, ids[i], t.tokens[i], on)
		if err != nil {
			return err
		}
		slots[i].Store(a)
		if connected != nil {
			connected.Add(1)
		}
		return nil
	})
	stop()
	f := &fleet{agents: make([]*agent, len(ids))}
	for i := range slots {
		f.agents[i] = slots[i].Load()
	}
	if err != nil {
		err = f.explain(err)
		f.close()
		return nil, err
	}
	return f, nil
}

// close closes every agent, many at a time (once).
func (f *fleet) close() {
	f.closeOnce.Do(func() {
		_ = parallel(context.Background(), len(f.agents), 256, func(i int) error {
			if a := f.agents[i]; a != nil {
				a.close()
			}
			return nil
		})
	})
}

// lost counts agents the hub disconnected, by close code.
func (f *fleet) lost() map[string]int {
	out := map[string]int{}
	for _, a := range f.agents {
		if a == nil {
			continue
		}
		if code, ok := a.closedByHub(); ok {
			out[strconv.Itoa(int(code))]++
		}
	}
	return out
}

// explain adds to err which sockets the hub closed, the usual reason a
// phase stops making progress.
func (f *fleet) explain(err error) error {
	if lost := f.lost(); len(lost) > 0 {
		return fmt.Errorf("%w; the hub closed agent sockets (count by close code): %v", err, lost)
	}
	return err
}

// samples merges every agent's latencies of one phase.
func (f *fleet) samples(phase int) latencies {
	sets := make([]latencies, 0, len(f.agents))
	for _, a := range f.agents {
		if a != nil {
			sets = append(sets, a.sets[phase])
		}
	}
	return merge(sets...)
}

// frameType reads the "type" of a hub frame without decoding it all: the
// bench sees many frames and only a few kinds matter. Frames of the bench's
// own traffic never carry "type" inside payloads, so the first occurrence
// is the frame's.
func frameType(data []byte) string {
	const key = `"type":"`
	i := bytes.Index(data, []byte(key))
	if i < 0 {
		return ""
	}
	rest := data[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	// The types the scenarios look for come back as the constants: a
	// string made per frame was an allocation per frame for 1,000 readers.
	typ := rest[:j]
	for _, known := range [...]string{protocol.OutMessage, protocol.OutMessageSent, protocol.OutTaskAssign,
		protocol.OutTaskAck, protocol.OutError, protocol.OutPong, protocol.OutIdentified} {
		if string(typ) == known {
			return known
		}
	}
	return string(typ)
}

// payloadStamp reads the stamp and the sender of a message frame without
// decoding it, when the frame is exactly what the hub writes for one of
// the bench's messages (protocol.PushedMessage, whose field order
// encoding/json keeps, with the payload map's keys sorted):
//
//	{"type":"message","id":"…","from":"…","message_type":"…",
//	 "payload":{"bench_n":N,"bench_t0":T},"reply_to":null|"…","timestamp":N}
//
// In the broadcast scenario the load tool's 1,000 receivers spent more
// CPU on json.Unmarshal of every frame than the hub spent writing it, on
// the two cores they share with the hub. The whole frame is matched, and
// strings holding an escape are not read, so a frame payloadStamp reads
// is one a full decode reads the same (FuzzPayloadStamp); ok is false for
// any other frame, which callers then decode in full (messageStamp).
func payloadStamp(data []byte) (s stamp, from []byte, ok bool) {
	c := frameCursor(data)
	ok = c.lit(`{"type":"`+protocol.OutMessage+`","id":"`) && c.str() != nil &&
		c.lit(`,"from":"`)
	if !ok {
		return stamp{}, nil, false
	}
	from = c.str()
	ok = from != nil && c.lit(`,"message_type":"`) && c.str() != nil &&
		c.lit(`,"payload":{"bench_n":`) && c.int(&s.N) && c.lit(`,"bench_t0":`) && c.int(&s.T0) &&
		c.lit(`},"reply_to":`) && (c.lit(`null`) || (c.lit(`"`) && c.str() != nil)) &&
		c.lit(`,"timestamp":`) && c.int(new(int64)) && c.lit(`}`) && len(c) == 0
	if !ok {
		return stamp{}, nil, false
	}
	return s, from, true
}

// frameCursor is what payloadStamp has left to read of a frame.
type frameCursor []byte

// lit consumes lit if the rest starts with it.
func (c *frameCursor) lit(lit string) bool {
	if !bytes.HasPrefix(*c, []byte(lit)) {
		return false
	}
	*c = (*c)[len(lit):]
	return true
}

// str consumes the rest of a string whose opening quote was consumed and
// returns its content, or nil for one holding an escape or control byte,
// or none (a content that decodes to other bytes), or an empty one.
func (c *frameCursor) str() []byte {
	for i, b := range *c {
		switch {
		case b == '"' && i > 0:
			s := (*c)[:i]
			*c = (*c)[i+1:]
			return s
		case b == '"', b == '\\', b < 0x20, b >= 0x80:
			return nil
		}
	}
	return nil
}

// int consumes a non-negative decimal integer without leading zeros, of
// at most 18 digits (it cannot overflow), into n.
func (c *frameCursor) int(n *int64) bool {
	d := *c
	i := 0
	var v int64
	for ; i < len(d) && d[i] >= '0' && d[i] <= '9'; i++ {
		v = v*10 + int64(d[i]-'0')
	}
	if i == 0 || i > 18 || (i > 1 && d[0] == '0') {
		return false
	}
	*n = v
	*c = d[i:]
	return true
}

// messageStamp is the stamp and the sender of a message frame: read by
// payloadStamp when the frame has the hub's shape, else decoded in full.
func messageStamp(data []byte) (stamp, []byte, error) {
	if s, from, ok := payloadStamp(data); ok {
		return s, from, nil
	}
	f, err := decodeFrame(data)
	return f.Payload, []byte(f.From), err
}

func decodeFrame(data []byte) (frame, error) {
	var f frame
	err := json.Unmarshal(data, &f)
	return f, err
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// parallel runs fn(0..n-1) on up to workers goroutines. The first error
// stops the handing out of further indexes and is returned.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	if n == 0 {
		return nil
	}
	workers = max(min(workers, n), 1)
	var next atomic.Int64
	var once sync.Once
	var first error
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				err := ctx.Err()
				if err == nil {
					err = fn(i)
				}
				if err != nil {
					once.Do(func() { first = err })
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return first
}

// errTimeout is returned when a phase does not finish in time.
var errTimeout = errors.New("timed out")
