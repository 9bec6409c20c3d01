package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/agentcom/agentcom/internal/protocol"
)

// runTasks: T tasks are submitted over HTTP by concurrent clients while
// the agents accept and complete each task the moment it is assigned.
// Then Samples tasks go in one at a time, each after the previous one
// completed, so every agent is idle and submit → task_assign is measured
// without queueing.
func runTasks(ctx context.Context, r *runner, res *Result) error {
	o := r.o
	batch := min(max(o.Batch, 1), MaxBatch)
	res.Params = map[string]any{"agents": o.Agents, "tasks": o.Tasks, "samples": o.Samples, "submitters": o.Submitters, "batch": batch}
	ids := r.agentIDs("task-agent", o.Agents)
	t, err := startTarget(ctx, o, o.ChildHub, ids)
	if err != nil {
		return err
	}
	defer t.stop()
	res.Hub = t.kind

	var connected, assigned, completed, failures atomic.Int64
	var lastDone atomic.Int64
	notify := make(chan struct{}, 1)
	var firstErr atomic.Pointer[string]
	on := func(a *agent, typ string, data []byte, at time.Time) {
		switch typ {
		case protocol.OutTaskAssign:
			f, err := decodeFrame(data)
			if err != nil {
				failures.Add(1)
				return
			}
			if f.Metadata.T0 > 0 && f.Metadata.N >= 0 && int(f.Metadata.N) < len(a.sets) {
				a.sets[f.Metadata.N].add(r.since(f.Metadata.T0, at))
			}
			assigned.Add(1)
			err1 := a.send(acceptedFrame(f.TaskID))
			err2 := a.send(completeFrame(f.TaskID, f.Generation))
			if err1 != nil || err2 != nil {
				failures.Add(1)
			}
		case protocol.OutTaskAck:
			if bytes.Contains(data, []byte(`"status":"`+protocol.AckComplete+`"`)) {
				lastDone.Store(r.now())
				completed.Add(1)
				select {
				case notify <- struct{}{}:
				default:
				}
			}
		case protocol.OutError:
			failures.Add(1)
			s := string(data)
			firstErr.CompareAndSwap(nil, &s)
		}
	}
	r.prog.begin("tasks: connect", func() string { return fmt.Sprintf("%d/%d agents identified", connected.Load(), o.Agents) })
	f, err := r.connectFleet(ctx, t, ids, on, &connected)
	if err != nil {
		return err
	}
	defer f.close()
	defer f.keepAlive(o.PingInterval)()

	// Phase 0: everything at once.
	var submitted atomic.Int64
	r.prog.begin("tasks: flood", func() string {
		return fmt.Sprintf("submitted %d/%d  assigned %d  completed %d", submitted.Load(), o.Tasks, assigned.Load(), completed.Load())
	})
	requests := (o.Tasks + batch - 1) / batch
	httpLat := make(latencies, requests)
	start := r.now()
	err = parallel(ctx, requests, o.Submitters, func(i int) error {
		t0 := r.now()
		first, n := i*batch, min(batch, o.Tasks-i*batch)
		var err error
		if batch == 1 {
			err = r.submitTask(ctx, t, first, t0, 0)
		} else {
			err = r.submitBatch(ctx, t, first, n, t0)
		}
		if err != nil {
			return err
		}
		httpLat[i] = time.Duration(r.now()-t0) * time.Microsecond
		submitted.Add(int64(n))
		return nil
	})
	if err != nil {
		return err
	}
	if err := waitCount(ctx, &completed, int64(o.Tasks), notify); err != nil {
		return f.explain(fmt.Errorf("flood: %d of %d tasks completed: %w", completed.Load(), o.Tasks, err))
	}
	elapsed := time.Duration(lastDone.Load()-start) * time.Microsecond
	flood := f.samples(0)
	slices.Sort(httpLat)

	// Phase 1: one at a time, every agent idle.
	done := int64(o.Tasks)
	r.prog.begin("tasks: idle latency", func() string {
		return fmt.Sprintf("sample %d/%d", completed.Load()-int64(o.Tasks), o.Samples)
	})
	for i := range o.Samples {
		if err := r.submitTask(ctx, t, o.Tasks+i, r.now(), 1); err != nil {
			return err
		}
		done++
		if err := waitCount(ctx, &completed, done, notify); err != nil {
			return f.explain(fmt.Errorf("idle latency: sample %d not completed: %w", i, err))
		}
	}
	idle := f.samples(1)

	res.add(Figure{Name: "throughput", Value: rate(o.Tasks, elapsed), Unit: "tasks/s"})
	if batch > 1 {
		res.goal("throughput", "≥ 15,000 tasks/s with 100 agents, batch submits", o.Agents == 100, rate(o.Tasks, elapsed) >= 15000)
	} else {
		res.goal("throughput", "≥ 8,000 tasks/s with 100 agents, one submit per request", o.Agents == 100, rate(o.Tasks, elapsed) >= 8000)
	}
	res.add(Figure{Name: "flood_elapsed", Value: elapsed.Seconds(), Unit: "s"})
	res.add(flood.percentileFigures("flood_submit_to_assign")...)
	res.add(httpLat.percentileFigures("flood_submit_http")...)
	res.add(idle.percentileFigures("idle_submit_to_assign")...)
	res.goal("idle_submit_to_assign_p99", "≤ 2 ms with 1,000 idle agents", o.Agents >= 1000, idle.quantile(0.99) <= 2*time.Millisecond)
	res.add(Figure{Name: "errors", Value: float64(failures.Load()), Unit: "frames"})
	res.note("throughput: first submit to last task_ack(complete), %d tasks by %d concurrent HTTP clients, %d per request; each agent sends task_accepted and task_complete on task_assign", o.Tasks, o.Submitters, batch)
	if batch > 1 {
		res.note("flood_submit_http is per request of %d tasks (POST /api/tasks/batch)", batch)
	}
	res.note("latency: submit → task_assign is from just before the POST to the frame's arrival at the agent (same process clock); flood figures include queueing behind busy agents, idle figures do not")
	if p := firstErr.Load(); p != nil {
		res.note("first error frame: %s", *p)
	}
	if lost := f.lost(); len(lost) > 0 {
		return fmt.Errorf("hub closed agent sockets (by close code): %v", lost)
	}
	return nil
}

// submitTask posts task i, stamped with t0 and the phase, to the i-th hub
// (of several, they take turns).
func (r *runner) submitTask(ctx context.Context, t *target, i int, t0 int64, phase int) error {
	body := fmt.Appendf(nil, `{"description":"bench task %d","priority":"normal","metadata":{"bench_t0":%d,"bench_n":%d}}`, i, t0, phase)
	return r.create(ctx, t.hub(i), t.admin, "/api/tasks", body)
}

// create POSTs body to path and expects 201 Created.
func (r *runner) create(ctx context.Context, base, token, path string, body []byte) error {
	status, raw, err := r.post.post(ctx, base+path, token, body)
	if errors.Is(err, errNotPlainHTTP) {
		status, raw, err = r.call(ctx, base, token, http.MethodPost, path, body)
	}
	if err != nil {
		return err
	}
	if status != http.StatusCreated {
		return fmt.Errorf("POST %s: HTTP %d: %s", path, status, raw)
	}
	return nil
}

// MaxBatch is the most tasks one batch submit carries (the hub's limit).
const MaxBatch = 100

// submitBatch posts tasks first..first+n-1, stamped with t0, in one
// POST /api/tasks/batch to the hub of the first.
func (r *runner) submitBatch(ctx context.Context, t *target, first, n int, t0 int64) error {
	body := []byte(`{"tasks":[`)
	for i := first; i < first+n; i++ {
		if i > first {
			body = append(body, ',')
		}
		body = fmt.Appendf(body, `{"key":"k%d","description":"bench task %d","priority":"normal","metadata":{"bench_t0":%d,"bench_n":0}}`, i, i, t0)
	}
	body = append(body, "]}"...)
	return r.create(ctx, t.hub(first), t.admin, "/api/tasks/batch", body)
}

// call makes one API request to the hub at base with token.
func (r *runner) call(ctx context.Context, base, token, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.api.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// waitCount waits until c reaches want; notify is signalled on changes.
// It gives up when no progress is made for a minute.
func waitCount(ctx context.Context, c *atomic.Int64, want int64, notify <-chan struct{}) error {
	last, lastAt := c.Load(), time.Now()
	for {
		n := c.Load()
		if n >= want {
			return nil
		}
		if n != last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) > time.Minute {
			return fmt.Errorf("no progress for a minute: %w", errTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-notify:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// agentIDs names n agents. Against a remote hub the names carry a random
// run tag so they clash neither with real agents nor with earlier runs.
func (r *runner) agentIDs(prefix string, n int) []string {
	tag := ""
	if r.o.remote() {
		var b [3]byte
		_, _ = rand.Read(b[:])
		tag = hex.EncodeToString(b[:]) + "-"
	}
	out := make([]string, n)
	for i := range out {
		out[i] = "bench-" + tag + prefix + "-" + strconv.Itoa(i)
	}
	return out
}
