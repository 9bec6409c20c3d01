package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Chart history bounds: one point per minute for seven days, kept in
// memory and in the series store so the charts survive a restart.
const (
	HistoryMinutes = 7 * 24 * 60
	// sampleCap bounds the wait and run samples of one minute; beyond it
	// samples are replaced at random (reservoir sampling), so a busy
	// minute's percentiles stay representative in bounded memory.
	sampleCap = 512
	minuteMs  = 60000
)

// SeriesPoint is one minute of chart history, as stored and as
// GET /api/dashboard/series returns it.
type SeriesPoint struct {
	T         int64 `json:"t"` // start of the minute, Unix ms
	Completed int   `json:"completed"`
	Failed    int   `json:"failed"`
	Tokens    int64 `json:"tokens"`
	RunSumMs  int64 `json:"run_sum_ms"` // of the completions
	// Depth is the largest queued count sampled in the minute; null when
	// the hub did not sample (it was down).
	Depth *int `json:"depth"`
	// Lanes is the queued count per lane (urgent, high, normal, low) at
	// the minute's largest sample.
	Lanes   [tasks.Lanes]int `json:"lanes"`
	WaitP50 int64            `json:"wait_p50_ms"`
	WaitP95 int64            `json:"wait_p95_ms"`
	RunP50  int64            `json:"run_p50_ms"`
	RunP95  int64            `json:"run_p95_ms"`
	Agents  int              `json:"agents"` // connected, most in the minute
}

// bucket is one minute being gathered (or loaded from the table).
type bucket struct {
	minute    int64
	completed int
	failed    int
	durSum    int64
	tokens    int64
	depth     int
	depthSet  bool
	lanes     [tasks.Lanes]int
	agents    int
	waits     samples
	runs      samples
	// loaded holds the stored percentiles of a minute read back from the
	// table; samples gathered afterwards (a restart within the minute)
	// take over.
	loaded *SeriesPoint
	dirty  bool
}

// samples is a bounded reservoir of durations.
type samples struct {
	vals []int64
	seen int
}

func (s *samples) add(v int64) {
	s.seen++
	if len(s.vals) < sampleCap {
		s.vals = append(s.vals, v)
		return
	}
	if i := rand.IntN(s.seen); i < sampleCap {
		s.vals[i] = v
	}
}

// percentiles returns the 50th and 95th percentiles (nearest rank).
func (s *samples) percentiles() (p50, p95 int64) {
	if len(s.vals) == 0 {
		return 0, 0
	}
	v := slices.Clone(s.vals)
	slices.Sort(v)
	rank := func(p int) int64 { return v[min(len(v)-1, (len(v)*p+99)/100-1)] }
	return rank(50), rank(95)
}

func (b *bucket) point() SeriesPoint {
	p := SeriesPoint{T: b.minute * minuteMs, Completed: b.completed, Failed: b.failed, Tokens: b.tokens,
		RunSumMs: b.durSum, Lanes: b.lanes, Agents: b.agents}
	if b.depthSet {
		d := b.depth
		p.Depth = &d
	}
	if b.loaded != nil {
		p.WaitP50, p.WaitP95, p.RunP50, p.RunP95 = b.loaded.WaitP50, b.loaded.WaitP95, b.loaded.RunP50, b.loaded.RunP95
	}
	if len(b.waits.vals) > 0 {
		p.WaitP50, p.WaitP95 = b.waits.percentiles()
	}
	if len(b.runs.vals) > 0 {
		p.RunP50, p.RunP95 = b.runs.percentiles()
	}
	return p
}

func bucketFrom(p SeriesPoint) *bucket {
	b := &bucket{minute: p.T / minuteMs, completed: p.Completed, failed: p.Failed, tokens: p.Tokens, durSum: p.RunSumMs,
		lanes: p.Lanes, agents: p.Agents, loaded: &p}
	if p.Depth != nil {
		b.depth, b.depthSet = *p.Depth, true
	}
	return b
}

// bucketAt returns the minute bucket of ts, creating it. Minutes older
// than the history are dropped as time moves on (see pruneLocked).
func (a *Aggregator) bucketAt(ts int64) *bucket {
	minute := ts / minuteMs
	b, ok := a.hist[minute]
	if !ok {
		b = &bucket{minute: minute}
		a.hist[minute] = b
	}
	b.dirty = true
	return b
}

// pruneLocked forgets minutes beyond the history and returns the oldest
// minute kept.
func (a *Aggregator) pruneLocked(nowMs int64) int64 {
	oldest := nowMs/minuteMs - HistoryMinutes + 1
	for m := range a.hist {
		if m < oldest {
			delete(a.hist, m)
		}
	}
	return oldest
}

// sealLocked replaces the samples of minutes that ended more than a
// minute ago by their percentiles, so memory holds samples for two
// minutes at most, not for the whole week.
func (a *Aggregator) sealLocked(nowMs int64) {
	cut := nowMs/minuteMs - 1
	for m, b := range a.hist {
		if m >= cut || (len(b.waits.vals) == 0 && len(b.runs.vals) == 0) {
			continue
		}
		p := b.point()
		b.loaded = &p
		b.waits, b.runs = samples{}, samples{}
	}
}

// historyTimeout bounds one read or write of the chart history.
const historyTimeout = 30 * time.Second

// loadHistory reads the stored minutes of the last HistoryMinutes.
// Undecodable records are skipped (and overwritten or pruned later): the
// charts are a convenience and must never keep the hub from starting.
func (a *Aggregator) loadHistory() error {
	if a.series == nil {
		return nil
	}
	nowMin := a.now().UnixMilli() / minuteMs
	oldest := nowMin - HistoryMinutes + 1
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	// Up to the end of time: minutes a clock set back left ahead of now
	// are loaded as before.
	rows, err := a.series.Range(ctx, max(oldest, 0), 1<<62)
	if err != nil {
		return fmt.Errorf("load chart history: %w", err)
	}
	loaded := map[int64]*bucket{}
	for _, r := range rows {
		var p SeriesPoint
		if json.Unmarshal(r.Body, &p) != nil || p.T/minuteMs != r.Minute {
			continue
		}
		loaded[r.Minute] = bucketFrom(p)
	}
	a.mu.Lock()
	for m, b := range loaded {
		if _, ok := a.hist[m]; !ok {
			a.hist[m] = b
		}
	}
	a.mu.Unlock()
	return nil
}

// persistHistory writes the minutes changed since the last call, then
// deletes stored minutes older than the history.
func (a *Aggregator) persistHistory() error {
	a.mu.Lock()
	nowMs := a.now().UnixMilli()
	oldest := a.pruneLocked(nowMs)
	a.sealLocked(nowMs)
	if a.series == nil {
		a.mu.Unlock()
		return nil
	}
	var rows []storage.SeriesRow
	var written []*bucket
	for _, b := range a.hist {
		if !b.dirty {
			continue
		}
		v, err := json.Marshal(b.point())
		if err != nil {
			a.mu.Unlock()
			return fmt.Errorf("encode chart minute: %w", err)
		}
		rows = append(rows, storage.SeriesRow{Minute: b.minute, Body: v})
		written = append(written, b)
		b.dirty = false
	}
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	// Minutes before 1970 (a clock far off) cannot be stored; they stay
	// in memory only.
	rows = slices.DeleteFunc(rows, func(r storage.SeriesRow) bool { return r.Minute < 0 })
	var err error
	for chunk := range slices.Chunk(rows, storage.MaxSeriesPut) {
		if err = a.series.Put(ctx, chunk); err != nil {
			break
		}
	}
	if err == nil {
		_, err = a.series.Trim(ctx, oldest)
	}
	if err != nil {
		a.mu.Lock()
		for _, b := range written {
			b.dirty = true // try again next time
		}
		a.mu.Unlock()
		return fmt.Errorf("store chart history: %w", err)
	}
	return nil
}

// SeriesRange is the answer of GET /api/dashboard/series: points of
// StepMs each, oldest first, from Start to End (the current step).
type SeriesRange struct {
	StepMs int64         `json:"step_ms"`
	Start  int64         `json:"start"`
	End    int64         `json:"end"`
	Points []SeriesPoint `json:"points"`
}

// maxSeriesPoints bounds one series answer.
const maxSeriesPoints = 720

// History returns the last minutes of chart history (at most
// HistoryMinutes) in steps of step minutes; a step too small for the
// range is raised so at most maxSeriesPoints come back. Counts add up
// within a step; depth, lanes, agents and percentiles take the step's
// largest minute value.
func (a *Aggregator) History(minutes, step int) SeriesRange {
	minutes = min(max(minutes, 1), HistoryMinutes)
	step = max(step, 1, (minutes+maxSeriesPoints-1)/maxSeriesPoints)
	nowMin := a.now().UnixMilli() / minuteMs
	endStep := nowMin / int64(step) * int64(step)
	n := (minutes + step - 1) / step
	startStep := endStep - int64(n-1)*int64(step)
	out := SeriesRange{StepMs: int64(step) * minuteMs, Start: startStep * minuteMs, End: endStep * minuteMs,
		Points: make([]SeriesPoint, n)}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range n {
		p := SeriesPoint{T: (startStep + int64(i)*int64(step)) * minuteMs}
		for m := startStep + int64(i)*int64(step); m < startStep+int64(i+1)*int64(step); m++ {
			b, ok := a.hist[m]
			if !ok {
				continue
			}
			q := b.point()
			p.Completed += q.Completed
			p.Failed += q.Failed
			p.Tokens += q.Tokens
			p.RunSumMs += q.RunSumMs
			if q.Depth != nil && (p.Depth == nil || *q.Depth > *p.Depth) {
				d := *q.Depth
				p.Depth = &d
				p.Lanes = q.Lanes
			}
			p.WaitP50, p.WaitP95 = max(p.WaitP50, q.WaitP50), max(p.WaitP95, q.WaitP95)
			p.RunP50, p.RunP95 = max(p.RunP50, q.RunP50), max(p.RunP95, q.RunP95)
			p.Agents = max(p.Agents, q.Agents)
		}
		out.Points[i] = p
	}
	return out
}
