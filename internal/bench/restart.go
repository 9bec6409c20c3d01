package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/hub"
	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/storage/boltdriver"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Record kinds of the restart scenario.
const (
	RecordTasks = "tasks"
	// RecordEndedTasks are tasks submitted and then cancelled: a hub's
	// history, which a start must not pay for task by task.
	RecordEndedTasks = "ended-tasks"
	RecordMailbox    = "mailbox"
)

// restartSubmitters is how many submitters the restart scenario's tasks
// are spread over: 1M tasks stay under each one's quota.
const restartSubmitters = 1000

// runRestart: Records records are stored through the domain packages
// (queued tasks, ended tasks, or mailbox messages spread over agents at
// the mailbox cap), the tables are closed, and then a hub is started on
// them twice: as after a clean close, and as after a crash (see
// startUntilReady for the figures).
func runRestart(ctx context.Context, r *runner, res *Result) error {
	o := r.o
	res.Hub = KindInProcess
	res.Params = map[string]any{"records": o.Records, "kind": o.RecordKind}
	dir, err := o.tempDir("restart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fillStart := time.Now()
	if err := r.fillRecords(ctx, dir); err != nil {
		return err
	}
	fill := time.Since(fillStart)
	var bytes int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && filepath.Ext(e.Name()) == ".db" {
			bytes += fi.Size()
		}
	}

	r.prog.begin("restart: start hub", func() string { return fmt.Sprintf("%d %s stored", o.Records, o.RecordKind) })
	clean, err := startUntilReady(ctx, dir)
	if err != nil {
		return err
	}
	// The same tables again as a crash leaves them: no clean-close
	// markers, so the start-up check reads every table in full.
	r.prog.begin("restart: start hub after a crash", func() string { return fmt.Sprintf("%d %s stored", o.Records, o.RecordKind) })
	if err := removeCleanMarkers(dir); err != nil {
		return err
	}
	crash, err := startUntilReady(ctx, dir)
	if err != nil {
		return err
	}
	res.add(Figure{Name: "records", Value: float64(o.Records), Unit: "records"},
		Figure{Name: "fill", Value: rate(o.Records, fill), Unit: "records/s"},
		Figure{Name: "data_size", Value: mb(bytes), Unit: "MB"},
		Figure{Name: "until_serving", Value: ms(clean.serving), Unit: "ms"},
		Figure{Name: "until_ready", Value: ms(clean.ready), Unit: "ms"},
		Figure{Name: "until_serving_after_crash", Value: ms(crash.serving), Unit: "ms"},
		Figure{Name: "until_ready_after_crash", Value: ms(crash.ready), Unit: "ms"})
	res.goal("until_serving", "≤ 2 s with 1M records", o.Records >= 1000000, clean.serving <= 2*time.Second)
	res.note("until_serving: from the start of the hub (it listens at once and loads behind the listener) until GET /health answers at all (503 while loading)")
	res.note("until_ready: from the start of the hub until GET /health answers 200 (tables opened, tasks loaded, services running)")
	res.note("after_crash: the same start with the clean-close markers removed, as a crash leaves the tables: the start-up check reads every table")
	return nil
}

// startTimes are the two figures of one start.
type startTimes struct{ serving, ready time.Duration }

// startUntilReady starts a hub over dir as `agentcom serve` does (listen,
// then load behind the listener), times its first answer to GET /health
// and its first 200, and shuts it down.
func startUntilReady(ctx context.Context, dir string) (startTimes, error) {
	cfg := hub.DefaultConfig()
	cfg.Addr, cfg.DataDir, cfg.Version, cfg.RateLimits = "127.0.0.1:0", dir, "bench", nil
	var t startTimes
	start := time.Now()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return t, err
	}
	l, err := hub.StartLoading(cfg, ln)
	if err != nil {
		ln.Close()
		return t, fmt.Errorf("start hub: %w", err)
	}
	base := "http://" + ln.Addr().String()
	err = waitHealth(ctx, base, time.Minute, nil, false)
	t.serving = time.Since(start)
	if err == nil {
		failed := make(chan error, 1)
		go func() {
			<-l.Done()
			if err := l.Err(); err != nil {
				failed <- err
			}
		}()
		err = waitHealth(ctx, base, 50*time.Minute, failed, true)
		t.ready = time.Since(start)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if serr := l.Shutdown(sctx); err == nil {
		err = serr
	}
	return t, err
}

// removeCleanMarkers removes the tables' clean-close markers in dir.
func removeCleanMarkers(dir string) error {
	for _, name := range store.AllTables() {
		if err := os.Remove(store.CleanMarkerPath(store.TablePath(dir, name))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// fillRecords stores the records through the packages the hub uses, many
// writers at once so the store groups the commits, then closes the tables.
func (r *runner) fillRecords(ctx context.Context, dir string) error {
	o := r.o
	db, err := store.Open(dir, store.AllTables(), store.Options{})
	if err != nil {
		return err
	}
	var put func(i int) error
	switch o.RecordKind {
	case RecordTasks, RecordEndedTasks:
		d, err := boltdriver.New(db)
		if err != nil {
			db.Close()
			return err
		}
		q, err := tasks.New(d.Tasks(), bus.New(), tasks.DefaultConfig())
		if err != nil {
			db.Close()
			return err
		}
		ended := o.RecordKind == RecordEndedTasks
		put = func(i int) error {
			// Spread over submitters: one submitter may hold at most
			// tasks.DefaultMaxQueuedPerSubmitter unfinished tasks.
			by := "bench-" + strconv.Itoa(i%restartSubmitters)
			t, err := q.Submit(tasks.SubmitParams{Description: "restart benchmark task " + strconv.Itoa(i),
				Metadata: map[string]any{"n": i}, Priority: i % 4, SubmittedBy: by})
			if err != nil || !ended {
				return err
			}
			_, _, err = q.Cancel(t.ID, by, true, "restart benchmark history")
			return err
		}
	case RecordMailbox:
		d, err := boltdriver.New(db)
		if err != nil {
			db.Close()
			return err
		}
		mbox := messaging.NewMailbox(d.Messages())
		agents := max(o.Records/messaging.MailboxCap, 1)
		now := time.Now()
		var ids messaging.IDs
		put = func(i int) error {
			to := "bench-restart-agent-" + strconv.Itoa(i%agents)
			_, err := mbox.Enqueue(ctx, to, messaging.Message{ID: ids.Next(now), From: "bench", To: to, Type: "chat",
				Payload: map[string]any{"n": i, "text": "restart benchmark message"}, Timestamp: now.UnixMilli()})
			return err
		}
	default:
		db.Close()
		return fmt.Errorf("unknown record kind %q (want %s, %s or %s)", o.RecordKind, RecordTasks, RecordEndedTasks, RecordMailbox)
	}
	var done atomic.Int64
	r.prog.begin("restart: fill", func() string { return fmt.Sprintf("%d/%d %s", done.Load(), o.Records, o.RecordKind) })
	err = parallel(ctx, o.Records, 512, func(i int) error {
		err := put(i)
		done.Add(1)
		return err
	})
	return errors.Join(err, db.Close())
}
