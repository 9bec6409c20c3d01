package sidecar

import (
	"testing"

	"github.com/agentcom/agentcom/internal/testenv"
)

// TestRestartWithReportInOutbox: README says reports wait in the outbox
// until the hub acknowledges them, across restarts. The sidecar finishes a
// task while the hub is down, is stopped with the report still in its
// outbox, and a new sidecar process on the same state sends it, once, on
// its first connection, and drains the outbox when the hub acknowledges.
func TestRestartWithReportInOutbox(t *testing.T) {
	h := newFakeHub(t, "tok-1")
	cfg := testConfig(t, h)
	r1 := start(t, cfg, Options{})
	h.next("identify")
	id := taskID(1)
	h.assign(id, 4, nil, "finish while the hub is away")
	h.next("task_accepted")
	testenv.Eventually(t, "working", func() bool { st := readState(t, cfg); return st.Active != nil && st.Active.Status == StatusWorking }, testenv.Within(wait))

	h.setDown(true)
	writeResult(t, cfg, id, map[string]any{"status": "success", "output": "kept"})
	testenv.Eventually(t, "report in the outbox", func() bool { st := readState(t, cfg); return st.Active == nil && len(st.Outbox) == 1 }, testenv.Within(wait))
	r1.stop(t)
	if st := readState(t, cfg); len(st.Outbox) != 1 || st.Outbox[0].TaskID != id {
		t.Fatalf("outbox after stop: %+v", st.Outbox)
	}

	h.setDown(false)
	r2 := start(t, cfg, Options{})
	h.next("identify")
	f := h.next("task_complete")
	if f.str("task_id") != id || f.num("generation") != 4 {
		t.Fatalf("complete after restart = %v", f.m)
	}
	testenv.Eventually(t, "outbox drained after the ack", func() bool { return len(readState(t, cfg).Outbox) == 0 }, testenv.Within(wait))
	testenv.Eventually(t, "report_acked event", func() bool { return r2.log.has("report_acked") }, testenv.Within(wait))
	if n := h.count("task_complete", id); n != 1 {
		t.Fatalf("report sent %d times", n)
	}
}
