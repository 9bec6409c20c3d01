package pgdriver

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/testenv"
)

// Callers that arrive while a commit is in flight share the next one;
// when a shared commit fails with a server error, each caller runs alone,
// so only the bad call's caller sees an error.
func TestGroupSharesCommits(t *testing.T) {
	for _, idempotent := range []bool{false, true} {
		t.Run(fmt.Sprintf("idempotent=%v", idempotent), func(t *testing.T) {
			release := make(chan struct{})
			var mu sync.Mutex
			var commits [][]string
			g := &group[string]{idempotent: idempotent}
			g.commit = func(_ context.Context, items []string) error {
				mu.Lock()
				commits = append(commits, slices.Clone(items))
				first := len(commits) == 1
				mu.Unlock()
				if first {
					<-release
				}
				for _, it := range items {
					if it == "bad" {
						return &pgconn.PgError{Code: "22021", Message: "bad item"}
					}
				}
				return nil
			}
			errs := map[string]error{}
			var wg sync.WaitGroup
			call := func(item string) {
				defer wg.Done()
				err := g.do(context.Background(), item)
				mu.Lock()
				errs[item] = err
				mu.Unlock()
			}
			wg.Add(1)
			go call("lead")
			waitQueue(t, g, 0, func() bool { mu.Lock(); defer mu.Unlock(); return len(commits) == 1 })
			items := []string{"a", "b", "bad", "c"}
			for _, it := range items {
				wg.Add(1)
				go call(it)
			}
			waitQueue(t, g, len(items), nil)
			close(release)
			wg.Wait()
			// 1: the leader alone; 2: the four queued behind it together;
			// then each of the four again alone.
			if len(commits) != 2+len(items) || !slices.Equal(commits[0], []string{"lead"}) || len(commits[1]) != len(items) {
				t.Fatalf("commits %v", commits)
			}
			for it, err := range errs {
				if (it == "bad") != (err != nil) {
					t.Errorf("%s: error %v", it, err)
				}
			}
		})
	}
}

// TestGroupUnknownOutcome: a shared commit whose outcome is unknown is not
// run again (it may have committed) unless the write is idempotent.
func TestGroupUnknownOutcome(t *testing.T) {
	for _, idempotent := range []bool{false, true} {
		release := make(chan struct{})
		var mu sync.Mutex
		n := 0
		g := &group[string]{idempotent: idempotent}
		g.commit = func(_ context.Context, items []string) error {
			mu.Lock()
			n++
			first := n == 1
			mu.Unlock()
			if first {
				<-release
				return nil
			}
			if len(items) > 1 {
				return errors.New("connection lost during commit")
			}
			return nil
		}
		var wg sync.WaitGroup
		errc := make(chan error, 3)
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errc <- g.do(context.Background(), "x")
			}()
			if i == 0 {
				waitQueue(t, g, 0, func() bool { mu.Lock(); defer mu.Unlock(); return n == 1 })
			}
		}
		waitQueue(t, g, 2, nil)
		close(release)
		wg.Wait()
		close(errc)
		failed := 0
		for err := range errc {
			if err != nil {
				failed++
			}
		}
		if want := map[bool]int{false: 2, true: 0}[idempotent]; failed != want {
			t.Errorf("idempotent=%v: %d callers failed, want %d", idempotent, failed, want)
		}
	}
}

// waitQueue polls until g has n queued calls and cond (if any) holds.
func waitQueue[T any](t *testing.T, g *group[T], n int, cond func() bool) {
	t.Helper()
	for {
		g.mu.Lock()
		q := len(g.queue)
		g.mu.Unlock()
		if q == n && (cond == nil || cond()) {
			return
		}
		if t.Context().Err() != nil {
			t.Fatal("gave up waiting")
		}
		runtime.Gosched()
	}
}

// Concurrent Puts on real PostgreSQL: every good one lands at its
// version, the one PostgreSQL refuses (text with NUL) fails alone.
func TestConcurrentPuts(t *testing.T) {
	ctx := context.Background()
	d := openDriver(t)
	ts := d.Tasks()
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			status := "pending"
			if i == 7 {
				status = "bad\x00status"
			}
			row := storage.TaskRow{ID: fmt.Sprintf("t%02d", i), Version: uint64(i + 1), Status: status, Body: []byte(`{}`)}
			errs[i] = ts.Put(ctx, []storage.TaskRow{row}, []storage.WorkflowRecord{{Key: fmt.Sprintf("k%02d", i%5), Value: []byte("v")}})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (i == 7) != (err != nil) {
			t.Errorf("put %d: %v", i, err)
		}
	}
	var got []string
	if err := ts.List(ctx, storage.TasksLive, storage.TaskFilter{}, func(r storage.TaskRow) error {
		if i, err := strconv.Atoi(strings.TrimPrefix(r.ID, "t")); err != nil || r.Version != uint64(i+1) {
			t.Errorf("%s at version %d", r.ID, r.Version)
		}
		got = append(got, r.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != n-1 || slices.Contains(got, "t07") {
		t.Fatalf("stored %v", got)
	}
}

// Concurrent appends on real PostgreSQL: gapless, distinct history and
// mailbox numbers, each result naming the rows its message got.
func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	d := openDriver(t)
	ms := d.Messages()
	const n = 40
	var wg sync.WaitGroup
	res := make([]storage.AppendResult, n)
	for i := range n {
		wg.Go(func() {
			body := fmt.Appendf(nil, `{"i":%d}`, i)
			r, err := ms.AppendMessage(ctx, storage.Append{StoredAt: 1,
				Message: storage.MessageRow{ID: fmt.Sprintf("m%d", i), From: "a", To: "b", Body: body},
				Copies:  []storage.MailboxCopy{{Agent: "b", Body: body}}})
			if err != nil {
				t.Error(err)
			}
			res[i] = r
		})
	}
	wg.Wait()
	entries, err := ms.PollMailbox(ctx, "b", 0, 2*n)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != n {
		t.Fatalf("%d mailbox entries", len(entries))
	}
	seqs := map[uint64]bool{}
	for i, r := range res {
		if r.Seq < 1 || r.Seq > n || seqs[r.Seq] || len(r.MailboxSeqs) != 1 {
			t.Fatalf("append %d: %+v", i, r)
		}
		seqs[r.Seq] = true
		e := entries[r.MailboxSeqs[0]-1]
		if e.Seq != r.MailboxSeqs[0] || string(e.Body) != fmt.Sprintf(`{"i":%d}`, i) {
			t.Errorf("append %d: mailbox entry %d is %s", i, e.Seq, e.Body)
		}
	}
}

// Concurrent publishes on three channels, one of them full: each channel's
// numbers are gapless, and each call's Trimmed is exactly the entry its
// number pushed out (n - cap), as if the calls had run one by one.
func TestConcurrentPublishes(t *testing.T) {
	ctx := context.Background()
	d := openDriver(t)
	ms := d.Messages()
	pub := func(ch string, i int) (storage.AppendResult, error) {
		body := fmt.Appendf(nil, `{"ch":%q,"i":%d}`, ch, i)
		return ms.PublishChannel(ctx, ch, storage.Append{StoredAt: 1,
			Message: storage.MessageRow{ID: fmt.Sprintf("%s-%d", ch, i), From: "a", Channel: ch, Body: body},
			Copies:  []storage.MailboxCopy{{Agent: "off", Body: body}}})
	}
	for i := range storage.ChannelHistoryCap {
		if _, err := pub("full", i); err != nil {
			t.Fatal(err)
		}
	}
	chans := []string{"full", "c1", "c2"}
	const n = 60
	var wg sync.WaitGroup
	res := make([]storage.AppendResult, n)
	for i := range n {
		wg.Go(func() {
			r, err := pub(chans[i%3], storage.ChannelHistoryCap+i)
			if err != nil {
				t.Error(err)
			}
			res[i] = r
		})
	}
	wg.Wait()
	seqs := map[string]map[uint64]bool{}
	for i, r := range res {
		ch := chans[i%3]
		if seqs[ch] == nil {
			seqs[ch] = map[uint64]bool{}
		}
		seqs[ch][r.Seq] = true
		var want []string
		if ch == "full" {
			want = []string{fmt.Sprintf("full-%d", r.Seq-storage.ChannelHistoryCap-1)}
		}
		if len(r.Trimmed) != len(want) || (len(want) > 0 && r.Trimmed[0] != want[0]) || len(r.MailboxSeqs) != 1 {
			t.Errorf("publish %d on %s: seq %d trimmed %v, want %v", i, ch, r.Seq, r.Trimmed, want)
		}
	}
	for _, ch := range chans {
		base := map[string]uint64{"full": storage.ChannelHistoryCap}[ch]
		for k := range uint64(n / 3) {
			if !seqs[ch][base+k+1] {
				t.Errorf("%s: no seq %d", ch, base+k+1)
			}
		}
		es, err := ms.ChannelHistory(ctx, ch, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(int(base)+n/3, storage.ChannelHistoryCap); len(es) != want {
			t.Errorf("%s: %d entries, want %d", ch, len(es), want)
		}
	}
}

// openDriver opens the driver on a fresh schema of its own.
func openDriver(t *testing.T) *Driver {
	t.Helper()
	d, err := Open(context.Background(), testenv.Postgres(t), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
