package dashboard

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/presence"
	"github.com/agentcom/agentcom/internal/tasks"
)

// benchQueue is a queue of n queued and n/10 running tasks.
type benchQueue struct{ queued, running []*tasks.Task }

func newBenchQueue(n int) *benchQueue {
	q := &benchQueue{}
	for i := range n {
		q.queued = append(q.queued, &tasks.Task{ID: fmt.Sprintf("task-%016x", i), Description: "a task to do", Priority: i % 4,
			Status: tasks.StatusQueued, CreatedAt: int64(i)})
	}
	for i := range n / 10 {
		at := int64(i)
		agent := fmt.Sprintf("agent-%d", i)
		q.running = append(q.running, &tasks.Task{ID: fmt.Sprintf("task-r%015x", i), Status: tasks.StatusAssigned,
			AssignedTo: &agent, AssignedAt: &at})
	}
	return q
}

func (q *benchQueue) Stats() tasks.Stats {
	return tasks.Stats{ByStatus: map[string]int{"queued": len(q.queued)}, ByPriority: map[string]int{}}
}
func (q *benchQueue) LaneCounts() [tasks.Lanes]int { return [tasks.Lanes]int{len(q.queued)} }
func (q *benchQueue) Queued(limit int) []*tasks.Task {
	return q.queued[:min(limit, len(q.queued))]
}
func (q *benchQueue) Assigned() []*tasks.Task { return q.running }
func (q *benchQueue) ListDeadLetter(tasks.Filter) ([]*tasks.Task, int, error) {
	return nil, 0, nil
}
func (q *benchQueue) Get(string) (*tasks.Task, error) { return nil, tasks.ErrNotFound }
func (q *benchQueue) Search(tasks.Filter) ([]*tasks.Task, int, error) {
	return nil, 0, nil
}
func (q *benchQueue) PausedState() tasks.Paused   { return tasks.Paused{} }
func (q *benchQueue) Schedules() []tasks.Schedule { return nil }

type benchAgents []agents.Agent

func (a benchAgents) List() []agents.Agent { return a }

type benchPresence []presence.Entry

func (p benchPresence) List() []presence.Entry { return p }

func benchAggregator(b *testing.B) *Aggregator {
	var ags benchAgents
	for i := range 50 {
		ags = append(ags, agents.Agent{ID: fmt.Sprintf("agent-%d", i), State: agents.Working, Capabilities: []string{"code"}})
	}
	bb := bus.New()
	a := NewAggregator(Config{}, Deps{Bus: bb, Queue: newBenchQueue(1000), Agents: ags, Presence: benchPresence{}})
	b.Cleanup(a.sub.Close)
	for i := range 200 {
		a.Apply(bus.Event{Data: tasks.EventData{Type: tasks.EventCompleted, TaskID: fmt.Sprint(i), AgentID: "agent-1", RunMs: 1000}})
	}
	return a
}

// BenchmarkBuild is the cost of one snapshot (1000 queued, 100 running,
// 50 agents, full rings); every browser shares it.
func BenchmarkBuild(b *testing.B) {
	a := benchAggregator(b)
	b.ReportAllocs()
	for b.Loop() {
		a.Build()
	}
}

// BenchmarkFlush100Clients is one 100 ms batch of 20 events sent to 100
// sockets: encoded once, queued to each.
func BenchmarkFlush100Clients(b *testing.B) {
	a := benchAggregator(b)
	var wg sync.WaitGroup
	for range 100 {
		// Served over a transport that takes every frame at once: the
		// writers drain the queues as browsers that keep up would.
		c := newClient(&Dashboard{log: discard()}, auth.Identity{}, 1024, 1<<20)
		a.addClient(c)
		wg.Go(func() {
			c.conn.Serve(context.Background(), discardWS{}, func(context.Context) { <-c.conn.Closing() })
		})
	}
	defer func() {
		a.closeClients()
		wg.Wait()
	}()
	ev := bus.Event{Data: tasks.EventData{Type: tasks.EventSubmitted, TaskID: "task-1", Description: "x"}}
	b.ReportAllocs()
	for b.Loop() {
		for range 20 {
			a.Apply(ev)
		}
		a.Flush()
	}
}

// discardWS is a socket that takes every frame at once.
type discardWS struct{}

func (discardWS) Write(context.Context, websocket.MessageType, []byte) error { return nil }
func (discardWS) Ping(context.Context) error                                 { return nil }
func (discardWS) Close(websocket.StatusCode, string) error                   { return nil }
