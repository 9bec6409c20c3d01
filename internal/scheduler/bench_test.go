package scheduler_test

import (
	"fmt"
	"log/slog"
	"math/rand"
	"sync"
	"testing"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/scheduler"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/tasks"
)

// okPusher delivers every assignment (a socket layer that keeps up).
type okPusher struct{}

func (okPusher) PushAssign(string, *tasks.Task) bool { return true }

// BenchmarkPass100kx1k measures one scheduling pass with 100 000 queued
// tasks and 1 000 idle agents: every agent gets a task, and the 1 000
// assignments are written durably (one group commit) and pushed. Tasks
// need up to two of eight capabilities (some are targeted at one agent);
// agents offer three to six. Between passes the agents disconnect and
// reconnect, which puts their tasks back at the head of the queue, so
// every pass sees 100k queued tasks.
func BenchmarkPass100kx1k(b *testing.B) {
	const nTasks, nAgents = 100_000, 1_000
	db, err := store.Open(b.TempDir(), store.AllTables(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	d, err := boltdriver.New(db)
	if err != nil {
		b.Fatal(err)
	}
	q, err := tasks.New(d.Tasks(), bus.New(), tasks.Config{})
	if err != nil {
		b.Fatal(err)
	}
	reg := agents.New(nil, agents.Config{})
	s := scheduler.New(q, reg, scheduler.DefaultConfig(), slog.New(slog.DiscardHandler))
	s.SetPusher(okPusher{})

	rng := rand.New(rand.NewSource(1))
	capNames := []string{"go", "js", "py", "review", "docs", "gpu", "linux", "mac"}
	agentCaps := make([][]string, nAgents)
	for i := range agentCaps {
		perm := rng.Perm(len(capNames))[:3+rng.Intn(4)]
		for _, j := range perm {
			agentCaps[i] = append(agentCaps[i], capNames[j])
		}
	}
	params := make([]tasks.SubmitParams, nTasks)
	for i := range params {
		p := tasks.SubmitParams{Description: "task", Priority: rng.Intn(tasks.Lanes)}
		for range rng.Intn(3) {
			p.NeededCapabilities = append(p.NeededCapabilities, capNames[rng.Intn(len(capNames))])
		}
		if rng.Intn(20) == 0 {
			p.TargetAgent = fmt.Sprintf("agent-%d", rng.Intn(nAgents))
		}
		params[i] = p
	}
	parallel(len(params), func(i int) {
		if _, err := q.Submit(params[i]); err != nil {
			b.Error(err)
		}
	})
	conn := uint64(0)
	connectAll := func() {
		for i := range nAgents {
			conn++
			reg.Connect(fmt.Sprintf("agent-%d", i), "", agentCaps[i], conn, "")
		}
	}
	connectAll()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if n := s.Pass(); n < nAgents*9/10 {
			b.Fatalf("only %d assignments", n)
		}
		b.StopTimer()
		agentsNow := reg.List()
		parallel(len(agentsNow), func(i int) { s.Disconnect(agentsNow[i].ID, agentsNow[i].Conn) })
		connectAll()
		if st := q.Stats(); st.ByStatus["queued"] != nTasks {
			b.Fatalf("stats %+v", st)
		}
		b.StartTimer()
	}
}

// parallel runs f(0..n-1) on 256 goroutines, so durable writes share
// group commits.
func parallel(n int, f func(int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
