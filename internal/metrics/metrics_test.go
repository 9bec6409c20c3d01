package metrics

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/tasks"
)

func TestObserveCountsAndSummary(t *testing.T) {
	m := New(bus.New(), Sources{})
	now := time.Now()
	ev := func(typ string, d tasks.EventData, at time.Time) bus.Event {
		d.Type = typ
		return bus.Event{Time: at.UnixMilli(), Data: d}
	}
	// Events come in time order; the first is outside the last hour.
	m.observe(ev(tasks.EventCompleted, tasks.EventData{RunMs: 10}, now.Add(-2*time.Hour)))
	m.observe(ev(tasks.EventSubmitted, tasks.EventData{}, now))
	m.observe(ev(tasks.EventAssigned, tasks.EventData{WaitMs: 40}, now))
	m.observe(ev(tasks.EventCompleted, tasks.EventData{RunMs: 1000}, now))
	m.observe(ev(tasks.EventFailed, tasks.EventData{RunMs: 3000}, now))
	m.observe(ev(tasks.EventReclaimed, tasks.EventData{Reason: tasks.ReasonLeaseExpired}, now))
	m.observe(bus.Event{Data: messaging.Routed{ID: "m1", Kind: "direct"}})
	m.observe(bus.Event{Data: messaging.ChannelPublished{ID: "m2", Kind: "channel"}})
	m.observe(bus.Event{Data: resilience.BackupCompleteEvent{}})
	m.ValidationFailed("")
	m.ValidationFailed("status")
	m.RateLimited("message")
	m.HTTPRequest("GET /health", 200)
	m.Connections(3)

	got := gather(t, m)
	for series, want := range map[string]float64{
		`agentcom_task_events_total{event="task_submitted"}`:           1,
		`agentcom_task_events_total{event="task_completed"}`:           2,
		`agentcom_task_reclaims_total{reason="lease_expired"}`:         1,
		`agentcom_messages_total{kind="direct"}`:                       1,
		`agentcom_messages_total{kind="channel"}`:                      1,
		`agentcom_validation_errors_total{schema="unknown"}`:           1,
		`agentcom_validation_errors_total{schema="status"}`:            1,
		`agentcom_rate_limited_total{kind="message"}`:                  1,
		`agentcom_http_requests_total{code="200",route="GET /health"}`: 1,
		`agentcom_connections`:                                         3,
		`agentcom_storage_events_total{event="backup_complete"}`:       1,
		`agentcom_task_wait_seconds_count`:                             1,
		`agentcom_task_run_seconds_count`:                              3,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
	n := 0
	for series := range got {
		if strings.HasPrefix(series, "agentcom_messages_total") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d message series, want direct and channel", n)
	}
	s := m.Summary()
	if s.CompletedHour != 1 || s.FailedHour != 1 || s.FailureRate != 0.5 {
		t.Errorf("last hour: %d completed, %d failed, rate %v; want 1, 1, 0.5", s.CompletedHour, s.FailedHour, s.FailureRate)
	}
	if s.WaitMs != (Percentiles{Samples: 1, P50: 40, P90: 40, P99: 40, Max: 40}) {
		t.Errorf("wait %+v", s.WaitMs)
	}
	if s.RunMs.Samples != 3 || s.RunMs.Max != 3000 || s.RunMs.P50 != 1000 {
		t.Errorf("run %+v", s.RunMs)
	}
	if s.ValidationErrs != 2 || s.RateLimited != 1 {
		t.Errorf("validation %d, limited %d", s.ValidationErrs, s.RateLimited)
	}
}

// The ring keeps the newest n samples.
func TestRingKeepsNewest(t *testing.T) {
	r := newRing(4)
	if p := r.percentiles(); p != (Percentiles{}) {
		t.Fatalf("empty %+v", p)
	}
	for v := range int64(10) {
		r.add(v)
	}
	p := r.percentiles()
	if p.Samples != 4 || p.Max != 9 || p.P50 != 8 {
		t.Fatalf("%+v; want 4 samples of 6..9", p)
	}
}

// gather reads every counter, gauge and histogram count from the registry
// as series -> value, series written name{label="v",...} in label order.
func gather(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			sort.Strings(labels)
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case mt.GetCounter() != nil:
				out[name] = mt.GetCounter().GetValue()
			case mt.GetGauge() != nil:
				out[name] = mt.GetGauge().GetValue()
			case mt.GetHistogram() != nil:
				out[mf.GetName()+"_count"] = float64(mt.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}
