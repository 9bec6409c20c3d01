// Package metrics exposes the hub's figures: Prometheus metrics on
// /metrics and a JSON summary on /api/metrics. Counters and histograms are
// fed from the event bus and from the transports' observer hooks; gauges
// are read from the domain at scrape time, so they are never stale.
package metrics

import (
	"context"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/messaging"
	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/store"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Sources are read at scrape time.
type Sources struct {
	Queue  *tasks.Queue
	Agents *agents.Registry
	DB     *store.DB
	// Storage, when set, reports backup and drill state per table.
	Storage StorageStatus
}

// StorageStatus is what the resilience layer reports per table.
type StorageStatus interface {
	Protection() []resilience.TableProtection
}

// Metrics holds the registry and the live summaries.
type Metrics struct {
	reg *prometheus.Registry
	src Sources
	bus *bus.Bus

	connections  prometheus.Gauge
	taskEvents   *prometheus.CounterVec
	reclaims     *prometheus.CounterVec
	waitSeconds  prometheus.Histogram
	runSeconds   prometheus.Histogram
	messages     *prometheus.CounterVec
	validation   *prometheus.CounterVec
	rateLimited  *prometheus.CounterVec
	httpRequests *prometheus.CounterVec
	storageEvts  *prometheus.CounterVec
	tokens       *prometheus.CounterVec
	cost         *prometheus.CounterVec

	mu       sync.Mutex
	waits    ring // recent wait times, ms
	runs     ring // recent run times, ms
	outcomes []outcome
	valErrs  int64
	limited  int64
	usage    usageSums
}

type outcome struct {
	at     time.Time
	failed bool
}

// New builds the metrics over their sources.
func New(b *bus.Bus, src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), src: src, bus: b, waits: newRing(1024), runs: newRing(1024), usage: newUsageSums()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{Name: "agentcom_connections", Help: "Open agent sockets."})
	m.taskEvents = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentcom_task_events_total",
		Help: "Task transitions by event (task_submitted, task_assigned, task_completed, task_failed, task_retried, task_dead_letter, ...)."}, []string{"event"})
	m.reclaims = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentcom_task_reclaims_total", Help: "Tasks taken back from agents, by reason."}, []string{"reason"})
	m.waitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "agentcom_task_wait_seconds",
		Help: "Time from submission (or requeue) to assignment.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 12)})
	m.runSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "agentcom_task_run_seconds",
		Help: "Time from assignment to completion or failure.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 12)})
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentcom_messages_total", Help: "Messages routed, by kind (direct, broadcast, channel)."}, []string{"kind"})
	m.validation = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentcom_validation_errors_total", Help: "Frames and bodies refused by validation, by schema."}, []string{"schema"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentcom_rate_limited_total", Help: "Frames and requests refused by rate limits."}, []string{"kind"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentcom_http_requests_total", Help: "HTTP requests by route and status."}, []string{"route", "code"})
	m.storageEvts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentcom_storage_events_total", Help: "Backups, compactions, recoveries and drills by outcome event."}, []string{"event"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentcom_agent_tokens_total",
		Help: "Tokens agents reported spending, by agent and kind (input, output, total)."}, []string{"agent", "kind"})
	m.cost = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "agentcom_agent_cost_usd_total", Help: "Cost agents reported, in USD, by agent."}, []string{"agent"})
	for _, c := range []prometheus.Collector{m.connections, m.taskEvents, m.reclaims, m.waitSeconds, m.runSeconds,
		m.messages, m.validation, m.rateLimited, m.httpRequests, m.storageEvts, m.tokens, m.cost} {
		f(c)
	}
	f(newScrapeCollector(m))
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the metrics registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Run consumes bus events until ctx ends.
func (m *Metrics) Run(ctx context.Context) {
	sub := m.bus.Subscribe(8192, bus.TopicTasks, bus.TopicMessages, bus.TopicStorage)
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-sub.C:
			m.observe(e)
		}
	}
}

func (m *Metrics) observe(e bus.Event) {
	switch e.Topic() {
	case bus.TopicTasks:
		m.taskEvents.WithLabelValues(e.Type()).Inc()
	case bus.TopicStorage:
		m.storageEvts.WithLabelValues(e.Type()).Inc()
	}
	switch d := e.Data.(type) {
	case tasks.EventData:
		m.observeTask(d, time.UnixMilli(e.Time))
	case messaging.Routed:
		m.messages.WithLabelValues(d.Kind).Inc()
	case messaging.ChannelPublished:
		m.messages.WithLabelValues(d.Kind).Inc()
	}
}

func (m *Metrics) observeTask(d tasks.EventData, now time.Time) {
	switch d.Type {
	case tasks.EventAssigned:
		m.waitSeconds.Observe(float64(d.WaitMs) / 1000)
		m.mu.Lock()
		m.waits.add(d.WaitMs)
		m.mu.Unlock()
	case tasks.EventCompleted, tasks.EventFailed:
		if d.Usage != nil {
			m.AddUsage(d.AgentID, now, *d.Usage)
		}
		m.runSeconds.Observe(float64(d.RunMs) / 1000)
		m.mu.Lock()
		m.runs.add(d.RunMs)
		m.outcomes = append(m.outcomes, outcome{at: now, failed: d.Type == tasks.EventFailed})
		m.pruneLocked(now)
		m.mu.Unlock()
	case tasks.EventReclaimed:
		m.reclaims.WithLabelValues(d.Reason).Inc()
	}
}

func (m *Metrics) pruneLocked(now time.Time) {
	cut := now.Add(-time.Hour)
	i := sort.Search(len(m.outcomes), func(i int) bool { return !m.outcomes[i].at.Before(cut) })
	m.outcomes = m.outcomes[i:]
}

// Connections records the number of open agent sockets (agentws.Observer).
func (m *Metrics) Connections(n int) { m.connections.Set(float64(n)) }

// ValidationFailed counts a refused frame or body (agentws and api Observer).
func (m *Metrics) ValidationFailed(schema string) {
	if schema == "" {
		schema = "unknown"
	}
	m.validation.WithLabelValues(schema).Inc()
	m.mu.Lock()
	m.valErrs++
	m.mu.Unlock()
}

// RateLimited counts a refused frame or request.
func (m *Metrics) RateLimited(kind string) {
	m.rateLimited.WithLabelValues(kind).Inc()
	m.mu.Lock()
	m.limited++
	m.mu.Unlock()
}

// HTTPRequest counts a request (api.Observer).
func (m *Metrics) HTTPRequest(route string, status int) {
	m.httpRequests.WithLabelValues(route, statusText(status)).Inc()
}

func statusText(code int) string { return strconv.Itoa(code) }

// Summary is the JSON view on /api/metrics.
type Summary struct {
	Timestamp      int64          `json:"timestamp"`
	QueueDepth     map[string]int `json:"queue_depth"` // queued tasks per lane
	QueuedTotal    int            `json:"queued_total"`
	Assigned       int            `json:"assigned"`
	Waiting        int            `json:"waiting"`   // tasks waiting for dependencies
	Scheduled      int            `json:"scheduled"` // tasks waiting for their run_at
	DeadLetter     int            `json:"dead_letter"`
	WaitMs         Percentiles    `json:"wait_ms"`
	RunMs          Percentiles    `json:"run_ms"`
	Agents         map[string]int `json:"agents"`
	Utilization    float64        `json:"agent_utilization"` // share of connected agents holding a task
	CompletedHour  int            `json:"completed_last_hour"`
	FailedHour     int            `json:"failed_last_hour"`
	FailureRate    float64        `json:"failure_rate_last_hour"`
	ValidationErrs int64          `json:"validation_errors"`
	RateLimited    int64          `json:"rate_limited"`
	// Usage sums what agents reported spending.
	Usage UsageSummary `json:"usage"`
}

// Percentiles over recent samples.
type Percentiles struct {
	Samples int   `json:"samples"`
	P50     int64 `json:"p50"`
	P90     int64 `json:"p90"`
	P99     int64 `json:"p99"`
	Max     int64 `json:"max"`
}

// Summary computes the JSON summary.
func (m *Metrics) Summary() Summary {
	now := time.Now()
	s := Summary{Timestamp: now.UnixMilli(), QueueDepth: map[string]int{}, Agents: map[string]int{}}
	if q := m.src.Queue; q != nil {
		lanes := q.LaneCounts()
		for p, n := range lanes {
			s.QueueDepth[tasks.LaneName(p)] = n
			s.QueuedTotal += n
		}
		st := q.Stats()
		s.Assigned = st.ByStatus[string(tasks.StatusAssigned)]
		s.Waiting = st.ByStatus[string(tasks.StatusWaiting)]
		s.Scheduled = st.ByStatus[string(tasks.StatusScheduled)]
		s.DeadLetter = st.DeadLetter
	}
	if r := m.src.Agents; r != nil {
		busy, total := 0, 0
		for st, n := range r.Counts() {
			s.Agents[string(st)] = n
			total += n
			if st != agents.Idle {
				busy += n
			}
		}
		if total > 0 {
			s.Utilization = float64(busy) / float64(total)
		}
	}
	m.mu.Lock()
	m.pruneLocked(now)
	s.WaitMs, s.RunMs = m.waits.percentiles(), m.runs.percentiles()
	for _, o := range m.outcomes {
		if o.failed {
			s.FailedHour++
		} else {
			s.CompletedHour++
		}
	}
	s.ValidationErrs, s.RateLimited = m.valErrs, m.limited
	s.Usage = m.usage.summary()
	m.mu.Unlock()
	if n := s.CompletedHour + s.FailedHour; n > 0 {
		s.FailureRate = float64(s.FailedHour) / float64(n)
	}
	return s
}

// ring keeps the last n samples.
type ring struct {
	buf  []int64
	next int
	full bool
}

func newRing(n int) ring { return ring{buf: make([]int64, n)} }

func (r *ring) add(v int64) {
	r.buf[r.next] = v
	r.next = (r.next + 1) % len(r.buf)
	if r.next == 0 {
		r.full = true
	}
}

func (r *ring) percentiles() Percentiles {
	n := r.next
	if r.full {
		n = len(r.buf)
	}
	if n == 0 {
		return Percentiles{}
	}
	s := slices.Clone(r.buf[:n])
	slices.Sort(s)
	at := func(p float64) int64 { return s[min(int(p*float64(n)), n-1)] }
	return Percentiles{Samples: n, P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: s[n-1]}
}

// scrapeCollector reads gauges from the domain at scrape time.
type scrapeCollector struct {
	m                                  *Metrics
	queue, agents, file, records, frag *prometheus.Desc
	schedules                          *prometheus.Desc
	backup, verified, drill, degraded  *prometheus.Desc
}

func newScrapeCollector(m *Metrics) *scrapeCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &scrapeCollector{m: m,
		queue:     d("agentcom_queue_tasks", "Tasks by status and lane.", "status", "lane"),
		agents:    d("agentcom_agents", "Connected agents by state.", "state"),
		file:      d("agentcom_table_file_bytes", "Size of a table's file.", "table"),
		records:   d("agentcom_table_records", "Records in a table.", "table"),
		frag:      d("agentcom_table_fragmentation_ratio", "Wasted share of a table's file.", "table"),
		backup:    d("agentcom_backup_age_seconds", "Age of the last successful backup (-1: never).", "table"),
		verified:  d("agentcom_backup_last_verified_timestamp_seconds", "When the newest verified backup was made (0: never).", "table"),
		drill:     d("agentcom_restore_drill_success", "1 when the last restore drill of a table succeeded.", "table"),
		degraded:  d("agentcom_table_degraded", "1 when a table runs in degraded mode.", "table"),
		schedules: d("agentcom_schedules", "Periodic schedules by state.", "state"),
	}
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queue, c.agents, c.file, c.records, c.frag, c.backup, c.verified, c.drill, c.degraded, c.schedules} {
		ch <- d
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	src := c.m.src
	if q := src.Queue; q != nil {
		st := q.Stats()
		lanes := q.LaneCounts()
		for p, n := range lanes {
			ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(n), string(tasks.StatusQueued), tasks.LaneName(p))
		}
		ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(st.ByStatus[string(tasks.StatusAssigned)]), string(tasks.StatusAssigned), "all")
		ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(st.DeadLetter), string(tasks.StatusDeadLetter), "all")
		for _, s := range []tasks.Status{tasks.StatusWaiting, tasks.StatusScheduled} {
			ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, float64(st.ByStatus[string(s)]), string(s), "all")
		}
		active, paused := q.SchedulesCount()
		ch <- prometheus.MustNewConstMetric(c.schedules, prometheus.GaugeValue, float64(active), "active")
		ch <- prometheus.MustNewConstMetric(c.schedules, prometheus.GaugeValue, float64(paused), "paused")
	}
	if r := src.Agents; r != nil {
		for st, n := range r.Counts() {
			ch <- prometheus.MustNewConstMetric(c.agents, prometheus.GaugeValue, float64(n), string(st))
		}
	}
	if db := src.DB; db != nil {
		for _, name := range db.Names() {
			t := db.Table(name)
			if t == nil {
				continue
			}
			st, err := t.Stats()
			if err != nil {
				continue
			}
			ch <- prometheus.MustNewConstMetric(c.file, prometheus.GaugeValue, float64(st.FileBytes), name)
			ch <- prometheus.MustNewConstMetric(c.records, prometheus.GaugeValue, float64(st.Records), name)
			ch <- prometheus.MustNewConstMetric(c.frag, prometheus.GaugeValue, st.Fragmentation, name)
		}
	}
	if s := src.Storage; s != nil {
		now := time.Now()
		for _, ts := range s.Protection() {
			age := -1.0
			if !ts.LastBackup.IsZero() {
				age = now.Sub(ts.LastBackup).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(c.backup, prometheus.GaugeValue, age, ts.Table)
			ver := 0.0
			if !ts.LastVerified.IsZero() {
				ver = float64(ts.LastVerified.Unix())
			}
			ch <- prometheus.MustNewConstMetric(c.verified, prometheus.GaugeValue, ver, ts.Table)
			ch <- prometheus.MustNewConstMetric(c.drill, prometheus.GaugeValue, b2f(ts.LastDrillOK), ts.Table)
			ch <- prometheus.MustNewConstMetric(c.degraded, prometheus.GaugeValue, b2f(ts.Degraded), ts.Table)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
