package tasks_test

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/tasks"
)

func noBackoff() tasks.Config { return tasks.Config{} }

func TestSubmitDefaultsAndDurability(t *testing.T) {
	e := newEnv(t, noBackoff())
	task := e.submit(tasks.SubmitParams{Description: "d", Priority: tasks.PriorityNormal})
	if !regexp.MustCompile(`^task-[a-f0-9]{16}$`).MatchString(task.ID) {
		t.Fatalf("id %q", task.ID)
	}
	want := func(task *tasks.Task) {
		t.Helper()
		if task.Status != tasks.StatusQueued || task.Priority != 2 || task.Generation != 0 || task.RetryCount != 0 ||
			task.MaxRetries != 3 || task.SubmittedBy != "unknown" || task.AssignedTo != nil || task.AssignedAt != nil ||
			task.CreatedAt != task.UpdatedAt || task.CreatedAt != e.clk.Ms() || len(task.NeededCapabilities) != 0 ||
			task.NeededCapabilities == nil || len(task.Metadata) != 0 || task.Metadata == nil || task.Result != nil ||
			task.LastError != nil || task.CompleteBy != nil || task.TargetAgent != nil {
			t.Fatalf("defaults: %+v", task)
		}
		if !reflect.DeepEqual(task.History, []tasks.Event{{Event: "queued", Timestamp: task.CreatedAt, Details: "submitted"}}) {
			t.Fatalf("history: %+v", task.History)
		}
	}
	want(task)
	e.reopen()
	want(e.get(task.ID))
	if s := e.Q.Stats(); s.ByStatus["queued"] != 1 || s.QueuedIndexSize != 1 || s.ByPriority["2"] != 1 {
		t.Fatalf("stats after reopen: %+v", s)
	}
}

// TestLaneOrder: lanes first, then created_at, then id; a retried or
// reclaimed task goes back to its original place in its lane.
func TestLaneOrder(t *testing.T) {
	e := newEnv(t, noBackoff())
	var ids []string
	for _, p := range []int{tasks.PriorityLow, tasks.PriorityNormal, tasks.PriorityUrgent, tasks.PriorityHigh, tasks.PriorityNormal} {
		ids = append(ids, e.submit(tasks.SubmitParams{Description: fmt.Sprint(p), Priority: p}).ID)
		e.clk.Advance(time.Millisecond)
	}
	// Two tasks in the same millisecond: the smaller id first.
	s1 := e.submit(tasks.SubmitParams{Priority: tasks.PriorityHigh})
	s2 := e.submit(tasks.SubmitParams{Priority: tasks.PriorityHigh})
	first, second := s1.ID, s2.ID
	if second < first {
		first, second = second, first
	}
	want := []string{ids[2], ids[3], first, second, ids[1], ids[4], ids[0]}
	order := func() []string {
		var out []string
		for _, task := range e.Q.Queued(0) {
			out = append(out, task.ID)
		}
		return out
	}
	if got := order(); !slices.Equal(got, want) {
		t.Fatalf("queued order\n got %v\nwant %v", got, want)
	}
	// AssignBatch hands them out in the same order.
	var handed []string
	_, err := e.Q.AssignBatch(func(task *tasks.Task) (string, bool) {
		handed = append(handed, task.ID)
		return fmt.Sprintf("agent-%d", len(handed)), false
	}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(handed, want) {
		t.Fatalf("assignment order\n got %v\nwant %v", handed, want)
	}
	// Newer normal tasks, then the old normal ones come back: they keep
	// their place ahead of the newer ones.
	e.clk.Advance(time.Second)
	newer := e.submit(tasks.SubmitParams{Priority: tasks.PriorityNormal}).ID
	n1, n2 := e.get(ids[1]), e.get(ids[4])
	if _, _, _, err := e.Q.Fail(n1.ID, n1.Holder(), n1.Generation, "boom", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Q.Reclaim(n2.ID, n2.Holder(), -1, tasks.ReasonDisconnect); err != nil {
		t.Fatal(err)
	}
	if got := order(); !slices.Equal(got, []string{ids[1], ids[4], newer}) {
		t.Fatalf("after retry/reclaim: %v, want %v", got, []string{ids[1], ids[4], newer})
	}
	// The order survives a restart (the index is rebuilt from disk).
	e.reopen()
	if got := order(); !slices.Equal(got, []string{ids[1], ids[4], newer}) {
		t.Fatalf("after reopen: %v", got)
	}
}

func TestGenerationFencing(t *testing.T) {
	e := newEnv(t, noBackoff())
	task := e.submit(tasks.SubmitParams{MaxRetries: intp(10)})
	if _, _, err := e.Q.Complete(task.ID, "a", 0, nil, nil); !errors.Is(err, tasks.ErrInvalidState) {
		t.Fatalf("complete queued: %v", err)
	}
	if _, _, err := e.Q.Complete("task-0000000000000000", "a", 1, nil, nil); !errors.Is(err, tasks.ErrNotFound) {
		t.Fatalf("complete unknown: %v", err)
	}
	gen := int64(0)
	step := func(what string, got *tasks.Task) {
		t.Helper()
		if got.Generation != gen+1 {
			t.Fatalf("%s: generation %d, want %d", what, got.Generation, gen+1)
		}
		gen = got.Generation
	}
	step("assign", e.assignTo("a"))
	if _, _, err := e.Q.Complete(task.ID, "a", 999, nil, nil); !errors.Is(err, tasks.ErrStaleGeneration) {
		t.Fatalf("wrong generation: %v", err)
	}
	if _, _, err := e.Q.Complete(task.ID, "b", gen, nil, nil); !errors.Is(err, tasks.ErrNotHolder) {
		t.Fatalf("wrong agent: %v", err)
	}
	if _, _, _, err := e.Q.Fail(task.ID, "b", gen, "x", nil); !errors.Is(err, tasks.ErrNotHolder) {
		t.Fatalf("fail by wrong agent: %v", err)
	}
	if _, err := e.Q.Progress(task.ID, "b"); !errors.Is(err, tasks.ErrNotHolder) {
		t.Fatalf("progress by wrong agent: %v", err)
	}
	if _, err := e.Q.Accept(task.ID, "b"); !errors.Is(err, tasks.ErrNotHolder) {
		t.Fatalf("accept by wrong agent: %v", err)
	}
	if _, err := e.Q.Reclaim(task.ID, "b", -1, tasks.ReasonDisconnect); !errors.Is(err, tasks.ErrNotHolder) {
		t.Fatalf("reclaim scoped to holder: %v", err)
	}
	got, outcome, _, err := e.Q.Fail(task.ID, "a", gen, "boom", nil)
	if err != nil || outcome != tasks.OutcomeRetried {
		t.Fatalf("fail: %v %v", outcome, err)
	}
	step("retry", got)
	step("assign", e.assignTo("a"))
	if _, err := e.Q.Reclaim(task.ID, "a", gen-1, tasks.ReasonLeaseExpired); !errors.Is(err, tasks.ErrStaleGeneration) {
		t.Fatalf("reclaim decided on an older assignment: %v", err)
	}
	got, err = e.Q.Reclaim(task.ID, "a", gen, tasks.ReasonDisconnect)
	if err != nil {
		t.Fatal(err)
	}
	step("reclaim", got)
	step("assign", e.assignTo("b"))
	// The old holder's report is stale now, even with the right number.
	if _, _, err := e.Q.Complete(task.ID, "a", gen, nil, nil); !errors.Is(err, tasks.ErrNotHolder) {
		t.Fatalf("old holder: %v", err)
	}
	got, err = e.Q.Reject(task.ID, "b", -1, "busy")
	if err != nil {
		t.Fatal(err)
	}
	step("reject", got)
	step("assign", e.assignTo("c"))
	if _, _, err := e.Q.Complete(task.ID, "c", gen-1, nil, nil); !errors.Is(err, tasks.ErrStaleGeneration) {
		t.Fatalf("previous generation: %v", err)
	}
	done, dup, err := e.Q.Complete(task.ID, "c", gen, map[string]any{"ok": true}, i64p(7))
	if err != nil || dup || done.Generation != gen || done.Status != tasks.StatusCompleted {
		t.Fatalf("complete: %+v %v %v", done, dup, err)
	}
	if _, _, _, err := e.Q.Fail(task.ID, "c", gen, "late", nil); !errors.Is(err, tasks.ErrInvalidState) {
		t.Fatalf("fail after complete: %v", err)
	}
	// The attempts record every assignment and how it ended.
	var outcomes []string
	for _, a := range e.get(task.ID).Attempts {
		outcomes = append(outcomes, fmt.Sprintf("%d:%s:%s", a.Generation, a.AgentID, a.Outcome))
	}
	want := []string{"1:a:failed", "3:a:reclaimed", "5:b:rejected", "7:c:completed"}
	if !slices.Equal(outcomes, want) {
		t.Fatalf("attempts %v, want %v", outcomes, want)
	}
}

// TestMaxRetries: max_retries is the total number of failures; the failure
// that reaches it dead-letters the task.
func TestMaxRetries(t *testing.T) {
	for _, tc := range []struct {
		max      *int
		failures int // failures until dead letter
	}{{intp(0), 1}, {intp(1), 1}, {intp(2), 2}, {nil, 3}, {intp(5), 5}} {
		t.Run(fmt.Sprint(tc.failures), func(t *testing.T) {
			e := newEnv(t, noBackoff())
			task := e.submit(tasks.SubmitParams{MaxRetries: tc.max})
			for i := 1; i <= tc.failures; i++ {
				a := e.assignTo("a")
				got, outcome, dup, err := e.Q.Fail(task.ID, "a", a.Generation, fmt.Sprintf("err %d", i), map[string]any{"n": i})
				if err != nil || dup {
					t.Fatalf("fail %d: %v %v", i, err, dup)
				}
				if got.RetryCount != i {
					t.Fatalf("fail %d: retry_count %d", i, got.RetryCount)
				}
				if i < tc.failures {
					if outcome != tasks.OutcomeRetried || got.Status != tasks.StatusQueued || got.Generation != a.Generation+1 || got.AssignedTo != nil {
						t.Fatalf("fail %d: %s %+v", i, outcome, got)
					}
					continue
				}
				if outcome != tasks.OutcomeDeadLetter || got.Status != tasks.StatusDeadLetter || got.Generation != a.Generation {
					t.Fatalf("last failure: %s %+v", outcome, got)
				}
			}
			dl := e.get(task.ID)
			if dl.Status != tasks.StatusDeadLetter || dl.LastError != fmt.Sprintf("err %d", tc.failures) ||
				!reflect.DeepEqual(dl.LastOutput, map[string]any{"n": float64(tc.failures)}) || len(dl.Attempts) != tc.failures ||
				dl.Holder() != "a" {
				t.Fatalf("dead letter record: %+v", dl)
			}
			if countEvent(dl, "retry") != tc.failures-1 || dl.History[0].Event != "dead_letter" {
				t.Fatalf("history: %v", historyEvents(dl))
			}
			if e.assignTo("a") != nil {
				t.Fatal("a dead-letter task was scheduled")
			}
		})
	}
}

func TestDeadLetterAndManualRetry(t *testing.T) {
	e := newEnv(t, noBackoff())
	task := e.submit(tasks.SubmitParams{MaxRetries: intp(1), CompleteBy: i64p(e.clk.Ms() + 1000)})
	a := e.assignTo("a")
	if _, err := e.Q.Accept(task.ID, "a"); err != nil {
		t.Fatal(err)
	}
	if _, oc, _, err := e.Q.Fail(task.ID, "a", a.Generation, "broken", "partial output"); err != nil || oc != tasks.OutcomeDeadLetter {
		t.Fatalf("fail: %v %v", oc, err)
	}
	list, total, err := e.Q.ListDeadLetter(tasks.Filter{})
	if err != nil || total != 1 || list[0].ID != task.ID || list[0].LastOutput != "partial output" {
		t.Fatalf("dead letter list: %v %d %v", list, total, err)
	}
	if l, _, _ := e.Q.List(tasks.Filter{}); len(l) != 0 {
		t.Fatalf("dead-letter task still listed in the queue: %v", l)
	}
	s := e.Q.Stats()
	if s.DeadLetter != 1 || len(s.ByStatus) != 0 || len(s.ByPriority) != 0 || s.QueuedIndexSize != 0 {
		t.Fatalf("stats: %+v", s)
	}
	// It survives a restart in the dead letter.
	e.reopen()
	if got := e.get(task.ID); got.Status != tasks.StatusDeadLetter {
		t.Fatalf("after reopen: %+v", got)
	}
	// It cannot be cancelled there; the refusal names the dead letter.
	var dse *tasks.StateError
	if _, _, err := e.Q.Cancel(task.ID, "root", true, ""); !errors.As(err, &dse) || dse.Status != tasks.StatusDeadLetter {
		t.Fatalf("cancel in the dead letter: %v", err)
	}
	e.clk.Advance(2 * time.Second) // the deadline passes while it sits there
	back, err := e.Q.RetryDeadLetter(task.ID)
	if err != nil {
		t.Fatal(err)
	}
	if back.Status != tasks.StatusQueued || back.RetryCount != 0 || back.LastError != nil || back.AssignedTo != nil ||
		back.Generation != a.Generation+1 || back.History[0].Details != "retried from dead-letter" || back.CompleteBy != nil ||
		len(back.Attempts) != 1 || back.CreatedAt != task.CreatedAt {
		t.Fatalf("retried: %+v", back)
	}
	// A second retry finds it queued and says so; a task that does not
	// exist is not found.
	var se *tasks.StateError
	if _, err := e.Q.RetryDeadLetter(task.ID); !errors.As(err, &se) || !errors.Is(err, tasks.ErrInvalidState) ||
		se.Status != tasks.StatusQueued || se.TaskID != task.ID {
		t.Fatalf("second retry: %v", err)
	}
	if _, err := e.Q.RetryDeadLetter("task-ffffffffffffffff"); !errors.Is(err, tasks.ErrNotFound) {
		t.Fatalf("retry of a missing task: %v", err)
	}
	if s := e.Q.Stats(); s.DeadLetter != 0 || s.ByStatus["queued"] != 1 || s.QueuedIndexSize != 1 {
		t.Fatalf("stats after retry: %+v", s)
	}
	if got := e.assignTo("b"); got == nil || got.ID != task.ID {
		t.Fatalf("retried task not schedulable: %v", got)
	}
}

// TestBackoffExponential: each failure waits BackoffBase doubled per
// earlier failure, capped at BackoffMax; the task is not handed out
// before its time.
func TestBackoffExponential(t *testing.T) {
	e := newEnv(t, tasks.Config{BackoffBase: time.Second, BackoffMax: 4 * time.Second})
	task := e.submit(tasks.SubmitParams{MaxRetries: intp(10)})
	other := e.submit(tasks.SubmitParams{Priority: tasks.PriorityLow})
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second} {
		a := e.assignID(task.ID, "a")
		failedAt := e.clk.Ms()
		got, _, _, err := e.Q.Fail(task.ID, "a", a.Generation, "x", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.NotBefore != failedAt+wait.Milliseconds() {
			t.Fatalf("failure %d: not_before %d, want now+%v", i+1, got.NotBefore-failedAt, wait)
		}
		if nd := e.Q.NextDue(); nd.UnixMilli() != got.NotBefore {
			t.Fatalf("next due %v, want %v", nd.UnixMilli(), got.NotBefore)
		}
		// While it waits, the scheduler sees only the other task; the
		// waiting one still counts as queued.
		e.clk.Advance(wait - time.Millisecond)
		if n, _ := e.Q.PromoteDue(); n != 0 {
			t.Fatalf("promoted %d early", n)
		}
		var offered []string
		if _, err := e.Q.AssignBatch(func(x *tasks.Task) (string, bool) { offered = append(offered, x.ID); return "", false }, 10); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(offered, []string{other.ID}) {
			t.Fatalf("offered during backoff: %v", offered)
		}
		if s := e.Q.Stats(); s.ByStatus["queued"] != 2 || s.QueuedIndexSize != 2 {
			t.Fatalf("stats during backoff: %+v", s)
		}
		e.clk.Advance(time.Millisecond)
		if n, _ := e.Q.PromoteDue(); n != 1 {
			t.Fatalf("promoted %d when due", n)
		}
		if !e.Q.NextDue().IsZero() {
			t.Fatal("next due after promotion")
		}
	}
	// A task waiting out its backoff keeps waiting across a restart.
	a := e.assignID(task.ID, "a")
	if _, _, _, err := e.Q.Fail(task.ID, "a", a.Generation, "x", nil); err != nil {
		t.Fatal(err)
	}
	e.reopen()
	if e.Q.NextDue().IsZero() {
		t.Fatal("backoff lost across restart")
	}
	e.clk.Advance(4 * time.Second)
	if n, _ := e.Q.PromoteDue(); n != 1 {
		t.Fatalf("promoted %d after restart", n)
	}
}

// TestDuplicateReports: a report resent after it was applied (same agent,
// same generation) returns the earlier outcome and changes nothing.
func TestDuplicateReports(t *testing.T) {
	e := newEnv(t, noBackoff())
	task := e.submit(tasks.SubmitParams{MaxRetries: intp(2)})
	a := e.assignTo("a")
	first, _, _, err := e.Q.Fail(task.ID, "a", a.Generation, "once", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Second)
	again, outcome, dup, err := e.Q.Fail(task.ID, "a", a.Generation, "twice", nil)
	if err != nil || !dup || outcome != tasks.OutcomeRetried || again.RetryCount != 1 || again.LastError != "once" {
		t.Fatalf("resent failure: %v %v %v %+v", outcome, dup, err, again)
	}
	if !reflect.DeepEqual(e.get(task.ID).History, first.History) {
		t.Fatal("resent failure changed the history")
	}
	// Someone else's or another generation's report is not a duplicate.
	if _, _, _, err := e.Q.Fail(task.ID, "b", a.Generation, "x", nil); err == nil {
		t.Fatal("another agent's resend accepted")
	}
	b := e.assignTo("b")
	done, dup, err := e.Q.Complete(task.ID, "b", b.Generation, map[string]any{"v": 1}, i64p(3))
	if err != nil || dup {
		t.Fatal(err, dup)
	}
	before := e.get(task.ID)
	e.clk.Advance(time.Second)
	again2, dup, err := e.Q.Complete(task.ID, "b", b.Generation, map[string]any{"v": 2}, i64p(9))
	if err != nil || !dup || again2.Status != tasks.StatusCompleted {
		t.Fatalf("resent completion: %v %v %+v", dup, err, again2)
	}
	after := e.get(task.ID)
	if !reflect.DeepEqual(before, after) || after.UpdatedAt != done.UpdatedAt || countEvent(after, "completed") != 1 {
		t.Fatalf("resent completion changed the task:\n%+v\n%+v", before, after)
	}
	if _, _, err := e.Q.Complete(task.ID, "a", a.Generation, nil, nil); !errors.Is(err, tasks.ErrInvalidState) {
		t.Fatalf("failed attempt's holder completing: %v", err)
	}
	if s := e.Q.Stats(); s.ByStatus["completed"] != 1 || len(s.ByStatus) != 1 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t, noBackoff())
	queued := e.submit(tasks.SubmitParams{SubmittedBy: "alice"})
	held := e.submit(tasks.SubmitParams{SubmittedBy: "alice", Priority: tasks.PriorityLow})
	if _, _, err := e.Q.Cancel(queued.ID, "bob", false, ""); !errors.Is(err, tasks.ErrForbidden) {
		t.Fatalf("cancel by another agent: %v", err)
	}
	got, holder, err := e.Q.Cancel(queued.ID, "alice", false, "not needed")
	if err != nil || holder != "" || got.Status != tasks.StatusCancelled || got.CancelledBy != "alice" || got.Generation != 1 {
		t.Fatalf("cancel queued: %+v %q %v", got, holder, err)
	}
	a := e.assignTo("worker")
	if a.ID != held.ID {
		t.Fatalf("assigned %s", a.ID)
	}
	got, holder, err = e.Q.Cancel(held.ID, "root", true, "")
	if err != nil || holder != "worker" || got.Generation != a.Generation+1 {
		t.Fatalf("admin cancel of a held task: %+v %q %v", got, holder, err)
	}
	if _, _, err := e.Q.Complete(held.ID, "worker", a.Generation, nil, nil); !errors.Is(err, tasks.ErrInvalidState) {
		t.Fatalf("complete after cancel: %v", err)
	}
	// A second cancel names the state and who cancelled it.
	var se *tasks.StateError
	if _, _, err := e.Q.Cancel(held.ID, "alice", true, ""); !errors.As(err, &se) || !errors.Is(err, tasks.ErrInvalidState) ||
		se.Status != tasks.StatusCancelled || se.CancelledBy != "root" {
		t.Fatalf("second cancel: %v", err)
	}
	if _, _, err := e.Q.Cancel("task-ffffffffffffffff", "root", true, ""); !errors.Is(err, tasks.ErrNotFound) {
		t.Fatalf("cancel unknown: %v", err)
	}
	if e.assignTo("worker") != nil {
		t.Fatal("a cancelled task was scheduled")
	}
	e.reopen()
	if s := e.Q.Stats(); s.ByStatus["cancelled"] != 2 || s.QueuedIndexSize != 0 || len(s.ByStatus) != 1 {
		t.Fatalf("stats: %+v", s)
	}
	if got := e.get(held.ID); got.Attempts[0].Outcome != "cancelled" || got.History[0].Event != "cancelled" {
		t.Fatalf("record: %+v", got)
	}
}

// TestExpire: a task past its deadline is taken from its holder (history
// "reclaimed", reason deadline) and dead-lettered with "deadline exceeded".
func TestExpire(t *testing.T) {
	e := newEnv(t, noBackoff())
	held := e.submit(tasks.SubmitParams{CompleteBy: i64p(e.clk.Ms() + 500)})
	waiting := e.submit(tasks.SubmitParams{CompleteBy: i64p(e.clk.Ms() + 500), Priority: tasks.PriorityLow})
	free := e.submit(tasks.SubmitParams{Priority: tasks.PriorityLow})
	a := e.assignID(held.ID, "a")
	if len(e.Q.Overdue()) != 0 {
		t.Fatal("overdue before the deadline")
	}
	e.clk.Advance(501 * time.Millisecond)
	over := e.Q.Overdue()
	if len(over) != 2 {
		t.Fatalf("overdue: %d", len(over))
	}
	got, holder, err := e.Q.Expire(held.ID)
	if err != nil || holder != "a" {
		t.Fatal(err, holder)
	}
	if got.Status != tasks.StatusDeadLetter || got.LastError != "deadline exceeded" || got.Generation != a.Generation+1 {
		t.Fatalf("expired: %+v", got)
	}
	ev := historyEvents(got)
	if !slices.Equal(ev[len(ev)-2:], []string{"reclaimed", "dead_letter"}) || got.History[1].Details != tasks.ReasonDeadline {
		t.Fatalf("history: %+v", got.History)
	}
	if _, _, err := e.Q.Complete(held.ID, "a", a.Generation, nil, nil); err == nil {
		t.Fatal("late completion accepted")
	}
	if _, holder, err := e.Q.Expire(waiting.ID); err != nil || holder != "" {
		t.Fatal(err, holder)
	}
	if got := e.assignTo("a"); got == nil || got.ID != free.ID {
		t.Fatalf("after expiry: %v", got)
	}
	if s := e.Q.Stats(); s.DeadLetter != 2 || s.ByStatus["assigned"] != 1 || len(s.ByStatus) != 1 || s.QueuedIndexSize != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

func TestRejectAndRecover(t *testing.T) {
	e := newEnv(t, noBackoff())
	task := e.submit(tasks.SubmitParams{})
	a := e.assignTo("a")
	if gen, ok := e.Q.Recover(task.ID, "a"); !ok || gen != a.Generation {
		t.Fatalf("recover by holder: %d %v", gen, ok)
	}
	if _, ok := e.Q.Recover(task.ID, "b"); ok {
		t.Fatal("recover by another agent continued the task")
	}
	if _, err := e.Q.Reject(task.ID, "b", -1, "busy"); !errors.Is(err, tasks.ErrNotHolder) {
		t.Fatalf("reject by another agent: %v", err)
	}
	if _, err := e.Q.Reject(task.ID, "a", a.Generation-1, "busy"); !errors.Is(err, tasks.ErrStaleGeneration) {
		t.Fatalf("reject of an earlier generation: %v", err)
	}
	got, err := e.Q.Reject(task.ID, "a", a.Generation, "busy")
	if err != nil || got.Status != tasks.StatusQueued || !slices.Equal(got.RejectedBy, []string{"a"}) || got.RetryCount != 0 {
		t.Fatalf("reject: %+v %v", got, err)
	}
	if _, ok := e.Q.Recover(task.ID, "a"); ok {
		t.Fatal("recover of a rejected task")
	}
	if held := e.Q.HeldBy("a"); len(held) != 0 {
		t.Fatalf("held by a: %v", held)
	}
}

func TestReclaimAgent(t *testing.T) {
	e := newEnv(t, noBackoff())
	for range 3 {
		e.submit(tasks.SubmitParams{})
	}
	e.assignTo("a")
	e.assignTo("a")
	b := e.assignTo("b")
	got, err := e.Q.ReclaimAgent("a", tasks.ReasonDisconnect)
	if err != nil || len(got) != 2 {
		t.Fatal(len(got), err)
	}
	for _, task := range got {
		if task.Status != tasks.StatusQueued || task.History[0].Details != tasks.ReasonDisconnect || task.RetryCount != 0 {
			t.Fatalf("reclaimed: %+v", task)
		}
	}
	if held := e.Q.HeldBy("b"); len(held) != 1 || held[0].ID != b.ID {
		t.Fatalf("b's task: %v", held)
	}
	if s := e.Q.Stats(); s.ByStatus["queued"] != 2 || s.ByStatus["assigned"] != 1 || s.QueuedIndexSize != 2 {
		t.Fatalf("stats: %+v", s)
	}
}

// TestAssignBatchSkipsBlockedGroups: a task nobody can take never stops
// the tasks behind it, and a group the picker says is blocked is skipped
// as a whole.
func TestAssignBatchSkipsBlockedGroups(t *testing.T) {
	e := newEnv(t, noBackoff())
	var gpu []string
	for range 3 {
		gpu = append(gpu, e.submit(tasks.SubmitParams{Priority: tasks.PriorityUrgent, NeededCapabilities: []string{"gpu"}}).ID)
	}
	plain := e.submit(tasks.SubmitParams{Priority: tasks.PriorityLow}).ID
	slices.Sort(gpu) // same millisecond: id order
	asked := map[string]int{}
	got, err := e.Q.AssignBatch(func(task *tasks.Task) (string, bool) {
		asked[task.ID]++
		if slices.Contains(task.NeededCapabilities, "gpu") {
			return "", true
		}
		return "cpu-agent", false
	}, 10)
	if err != nil || len(got) != 1 || got[0].ID != plain {
		t.Fatalf("assigned %v %v", got, err)
	}
	if asked[gpu[0]] != 1 || asked[gpu[1]] != 0 || asked[gpu[2]] != 0 {
		t.Fatalf("a blocked group was walked task by task: %v", asked)
	}
	// Skipped (not blocked) tasks stay queued in order for the next pass.
	if q := e.Q.Queued(0); len(q) != 3 || q[0].ID != gpu[0] {
		t.Fatalf("queued after pass: %v", q)
	}
	got, err = e.Q.AssignBatch(func(*tasks.Task) (string, bool) { return "", false }, 10)
	if err != nil || len(got) != 0 {
		t.Fatal(got, err)
	}
	got, err = e.Q.AssignBatch(func(*tasks.Task) (string, bool) { return "gpu-agent", false }, 10)
	if err != nil || len(got) != 3 || got[0].ID != gpu[0] || got[2].ID != gpu[2] {
		t.Fatalf("second pass: %v %v", got, err)
	}
}

// TestRecordsStayBounded: a task bounced forever (an agent that never
// accepts, a holder that keeps vanishing) keeps a bounded record: the
// newest history entries and attempts are kept.
func TestRecordsStayBounded(t *testing.T) {
	e := newEnv(t, noBackoff())
	task := e.submit(tasks.SubmitParams{})
	for range 3 * tasks.HistoryCap {
		e.assignTo("a")
		if _, err := e.Q.Reclaim(task.ID, "a", -1, tasks.ReasonAcceptTimeout); err != nil {
			t.Fatal(err)
		}
	}
	last := e.assignTo("a")
	got := e.get(task.ID)
	if len(got.History) != tasks.HistoryCap || len(got.Attempts) != tasks.AttemptsCap {
		t.Fatalf("history %d, attempts %d", len(got.History), len(got.Attempts))
	}
	if a := got.Attempts[len(got.Attempts)-1]; a.Generation != last.Generation || a.Outcome != "" {
		t.Fatalf("newest attempt: %+v", a)
	}
	if _, _, err := e.Q.Complete(task.ID, "a", last.Generation, nil, nil); err != nil {
		t.Fatal(err)
	}
}

// TestGiveBack: a task reclaimed because its holder disconnected goes back
// to that holder only (recovery), at a new generation; a task reclaimed
// for another reason, or by anyone else, stays queued.
func TestGiveBack(t *testing.T) {
	e := newEnv(t, noBackoff())
	task := e.submit(tasks.SubmitParams{NeededCapabilities: []string{"code"}})
	held := e.assignTo("a")
	if _, err := e.Q.ReclaimAgent("a", tasks.ReasonDisconnect); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Q.GiveBack(task.ID, "b", []string{"code"}); !errors.Is(err, tasks.ErrNotHolder) {
		t.Fatalf("another agent got it: %v", err)
	}
	if _, err := e.Q.GiveBack(task.ID, "a", nil); !errors.Is(err, tasks.ErrNotHolder) {
		t.Fatalf("an agent without the capability got it: %v", err)
	}
	got, err := e.Q.GiveBack(task.ID, "a", []string{"code"})
	if err != nil || got.Status != tasks.StatusAssigned || got.Holder() != "a" || got.Generation != held.Generation+2 {
		t.Fatalf("give back = %+v, %v", got, err)
	}
	if _, err := e.Q.GiveBack(task.ID, "a", []string{"code"}); !errors.Is(err, tasks.ErrInvalidState) {
		t.Fatalf("given back twice: %v", err)
	}
	// Reclaimed for a lapsed lease: not given back.
	if _, err := e.Q.Reclaim(task.ID, "a", -1, tasks.ReasonLeaseExpired); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Q.GiveBack(task.ID, "a", []string{"code"}); !errors.Is(err, tasks.ErrNotHolder) {
		t.Fatalf("lease-expired task given back: %v", err)
	}
	e.reopen()
	if g := e.get(task.ID); g.Status != tasks.StatusQueued {
		t.Fatalf("after reopen: %+v", g)
	}
}

// A hub restarted with its clock set back (or a new leader whose clock is
// behind the old one's) still makes ids above every stored one: the queue
// observes the ids it loads, so a new task can never take a stored id.
func TestNewIDsAboveStoredAfterClockGoesBack(t *testing.T) {
	e := newEnv(t, tasks.Config{})
	var last string
	for range 20 {
		last = max(last, e.submit(tasks.SubmitParams{Description: "before"}).ID)
	}
	e.clk.Advance(-time.Hour)
	e.reopen()
	next := e.submit(tasks.SubmitParams{Description: "after the clock went back"}).ID
	if next <= last {
		t.Fatalf("new id %s is not above the stored %s", next, last)
	}
}
