package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// fleetAgent is an agent as a sidecar behaves towards the hub: it keeps
// a socket to one hub of its list, moves to the next when that one goes
// away, identifies again and asks whether to continue the task it holds
// (task_recovering). It accepts every task, completes it after a short
// while, and records what the hub acknowledged and which messages it got.
type fleetAgent struct {
	id, token string
	urls      []string // ws:// URLs, in the order to try them
	caps      []string
	// lazy agents accept tasks and never finish them (the deadline sweep
	// must take them back).
	lazy bool

	mu          sync.Mutex
	hub         int       // index in urls of the current hub
	identifiedN int       // identifications so far
	identified  time.Time // last identification
	current     map[string]int64
	completed   map[string]int // task id -> hub-acknowledged completions (not duplicates)
	messages    map[string]bool
	reassigned  map[string]string // task id -> reason of a task_reassign
	conn        *websocket.Conn
}

func newFleetAgent(id, token string, urls []string, caps ...string) *fleetAgent {
	return &fleetAgent{id: id, token: token, urls: urls, caps: caps, current: map[string]int64{},
		completed: map[string]int{}, messages: map[string]bool{}, reassigned: map[string]string{}}
}

// run keeps the agent connected until ctx ends.
func (a *fleetAgent) run(ctx context.Context) {
	for ctx.Err() == nil {
		a.mu.Lock()
		url := a.urls[a.hub]
		a.mu.Unlock()
		err := a.session(ctx, url)
		if ctx.Err() != nil {
			return
		}
		_ = err
		a.mu.Lock()
		a.hub = (a.hub + 1) % len(a.urls)
		a.mu.Unlock()
		// A short pause after a full round, as a sidecar backs off.
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (a *fleetAgent) send(ctx context.Context, c *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.Write(wctx, websocket.MessageText, b)
}

// session is one connection: identify, recover held tasks, then serve
// frames until the socket fails.
func (a *fleetAgent) session(ctx context.Context, url string) error {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	c, _, err := websocket.Dial(dctx, url, nil)
	cancel()
	if err != nil {
		return err
	}
	c.SetReadLimit(32 << 20)
	defer c.CloseNow()
	if err := a.send(ctx, c, map[string]any{"type": "identify", "agent_id": a.id, "token": a.token,
		"capabilities": a.caps}); err != nil {
		return err
	}
	a.mu.Lock()
	a.conn = c
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.conn = nil
		a.mu.Unlock()
	}()
	// Completions run on their own goroutines; they write on c too.
	var wg sync.WaitGroup
	defer wg.Wait()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	for {
		_, data, err := c.Read(sctx)
		if err != nil {
			return err
		}
		var f struct {
			Type       string `json:"type"`
			TaskID     string `json:"task_id"`
			Generation int64  `json:"generation"`
			ID         string `json:"id"`
			Status     string `json:"status"`
			Duplicate  bool   `json:"duplicate"`
			Reason     string `json:"reason"`
			Error      string `json:"error"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			return fmt.Errorf("agent %s: bad frame %q: %w", a.id, data, err)
		}
		switch f.Type {
		case "identified":
			a.mu.Lock()
			a.identifiedN++
			a.identified = time.Now()
			held := make([]string, 0, len(a.current))
			for id := range a.current {
				held = append(held, id)
			}
			a.mu.Unlock()
			for _, id := range held {
				if err := a.send(sctx, c, map[string]any{"type": "task_recovering", "task_id": id}); err != nil {
					return err
				}
			}
		case "task_assign":
			a.mu.Lock()
			a.current[f.TaskID] = f.Generation
			a.mu.Unlock()
			if err := a.send(sctx, c, map[string]any{"type": "task_accepted", "task_id": f.TaskID}); err != nil {
				return err
			}
			a.finishLater(sctx, &wg, c, f.TaskID, f.Generation)
		case "task_continue":
			a.mu.Lock()
			a.current[f.TaskID] = f.Generation
			a.mu.Unlock()
			a.finishLater(sctx, &wg, c, f.TaskID, f.Generation)
		case "task_reassign":
			a.mu.Lock()
			delete(a.current, f.TaskID)
			a.reassigned[f.TaskID] = f.Reason
			a.mu.Unlock()
		case "task_ack":
			if f.Status == "complete" {
				a.mu.Lock()
				delete(a.current, f.TaskID)
				if !f.Duplicate {
					a.completed[f.TaskID]++
				}
				a.mu.Unlock()
			}
		case "message":
			a.mu.Lock()
			a.messages[f.ID] = true
			a.mu.Unlock()
		case "error":
			if f.TaskID != "" {
				// A report the hub refused (stale generation after a
				// reassignment): the task is not ours any more.
				a.mu.Lock()
				delete(a.current, f.TaskID)
				a.mu.Unlock()
			}
		}
	}
}

// finishLater completes the task after a short piece of "work", unless
// the agent is lazy.
func (a *fleetAgent) finishLater(ctx context.Context, wg *sync.WaitGroup, c *websocket.Conn, id string, gen int64) {
	if a.lazy {
		return
	}
	wg.Go(func() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
		err := a.send(ctx, c, map[string]any{"type": "task_complete", "task_id": id, "generation": gen,
			"result": map[string]any{"by": a.id}})
		if err != nil && !errors.Is(err, context.Canceled) {
			c.CloseNow() // the session ends; the next one recovers the task
		}
	})
}

func (a *fleetAgent) snapshot() (identifiedN int, identified time.Time, hub int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.identifiedN, a.identified, a.hub
}
