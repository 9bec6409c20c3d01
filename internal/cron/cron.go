// Package cron parses schedule expressions and computes their ticks in an
// explicit time zone.
//
// Accepted forms:
//
//   - five fields "minute hour day-of-month month day-of-week", each a
//     list of "*", "N", "A-B", with an optional "/STEP" ("*/15",
//     "1-30/2", "5/10"); months and weekdays also take their English
//     three-letter names (jan..dec, sun..sat; 7 is Sunday too). When
//     both day fields are restricted a day matching either runs, as in
//     classic cron.
//   - the macros @yearly (@annually), @monthly, @weekly, @daily
//     (@midnight) and @hourly.
//   - "@every DURATION" (Go duration, at least 1s, at most 31 days): ticks
//     at whole multiples of the duration since the Unix epoch, so every
//     hub computes the same ticks.
package cron

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxLen bounds an expression's length.
const MaxLen = 128

// Every-interval bounds.
const (
	MinEvery = time.Second
	MaxEvery = 31 * 24 * time.Hour
)

// searchYears bounds the search for the next tick: an expression that
// matches nothing in that span (Feb 30) has no next tick.
const searchYears = 5

// Schedule is a parsed expression.
type Schedule struct {
	expr  string
	every time.Duration // @every; the fields below are unused then

	minute, hour, dom, month, dow uint64 // bit sets
	domStar, dowStar              bool
}

// String returns the expression as written.
func (s *Schedule) String() string { return s.expr }

type bounds struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	minuteB = bounds{name: "minute", min: 0, max: 59}
	hourB   = bounds{name: "hour", min: 0, max: 23}
	domB    = bounds{name: "day of month", min: 1, max: 31}
	monthB  = bounds{name: "month", min: 1, max: 12, names: map[string]int{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6,
		"jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}}
	// Day of week accepts 0..7, 7 being Sunday again.
	dowB = bounds{name: "day of week", min: 0, max: 7, names: map[string]int{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}}
)

var macros = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

// Parse parses an expression. Errors name the field and the problem.
func Parse(expr string) (*Schedule, error) {
	if len(expr) > MaxLen {
		return nil, fmt.Errorf("expression longer than %d characters", MaxLen)
	}
	s := strings.TrimSpace(expr)
	if s == "" {
		return nil, errors.New("empty expression")
	}
	if rest, ok := strings.CutPrefix(s, "@every"); ok {
		rest = strings.TrimSpace(rest)
		d, err := time.ParseDuration(rest)
		if err != nil || rest == "" {
			return nil, fmt.Errorf("@every needs a duration such as 30s, 5m or 1h (got %q)", rest)
		}
		if d < MinEvery || d > MaxEvery {
			return nil, fmt.Errorf("@every duration must be between %v and %v", MinEvery, MaxEvery)
		}
		if d%time.Second != 0 {
			return nil, errors.New("@every duration must be whole seconds")
		}
		return &Schedule{expr: expr, every: d}, nil
	}
	if strings.HasPrefix(s, "@") {
		m, ok := macros[strings.ToLower(s)]
		if !ok {
			return nil, fmt.Errorf("unknown macro %q (use @yearly, @monthly, @weekly, @daily, @hourly or @every D)", s)
		}
		s = m
	}
	fields := strings.Fields(s)
	if len(fields) != 5 {
		return nil, fmt.Errorf("expected 5 fields (minute hour day-of-month month day-of-week), got %d", len(fields))
	}
	sch := &Schedule{expr: expr}
	var err error
	if sch.minute, err = parseField(fields[0], minuteB); err != nil {
		return nil, err
	}
	if sch.hour, err = parseField(fields[1], hourB); err != nil {
		return nil, err
	}
	if sch.dom, err = parseField(fields[2], domB); err != nil {
		return nil, err
	}
	if sch.month, err = parseField(fields[3], monthB); err != nil {
		return nil, err
	}
	if sch.dow, err = parseField(fields[4], dowB); err != nil {
		return nil, err
	}
	if sch.dow&(1<<7) != 0 {
		sch.dow |= 1 // 7 is Sunday
	}
	sch.domStar = fields[2] == "*" || strings.HasPrefix(fields[2], "*/")
	sch.dowStar = fields[4] == "*" || strings.HasPrefix(fields[4], "*/")
	return sch, nil
}

func parseField(f string, b bounds) (uint64, error) {
	var set uint64
	for part := range strings.SplitSeq(f, ",") {
		bits, err := parsePart(part, b)
		if err != nil {
			return 0, fmt.Errorf("%s field %q: %w", b.name, f, err)
		}
		set |= bits
	}
	return set, nil
}

func parsePart(p string, b bounds) (uint64, error) {
	if p == "" {
		return 0, errors.New("empty list item")
	}
	rng, stepStr, hasStep := strings.Cut(p, "/")
	step := 1
	if hasStep {
		n, err := strconv.Atoi(stepStr)
		if err != nil || n < 1 || n > b.max-b.min+1 {
			return 0, fmt.Errorf("step %q must be a number from 1 to %d", stepStr, b.max-b.min+1)
		}
		step = n
	}
	lo, hi := b.min, b.max
	switch {
	case rng == "*":
	case strings.Contains(rng, "-"):
		a, z, _ := strings.Cut(rng, "-")
		var err error
		if lo, err = value(a, b); err != nil {
			return 0, err
		}
		if hi, err = value(z, b); err != nil {
			return 0, err
		}
		if lo > hi {
			return 0, fmt.Errorf("range %q runs backwards", rng)
		}
	default:
		v, err := value(rng, b)
		if err != nil {
			return 0, err
		}
		lo = v
		if !hasStep {
			hi = v
		}
	}
	var set uint64
	for v := lo; v <= hi; v += step {
		set |= 1 << uint(v)
	}
	return set, nil
}

func value(s string, b bounds) (int, error) {
	if v, ok := b.names[strings.ToLower(s)]; ok {
		return v, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < b.min || n > b.max {
		return 0, fmt.Errorf("%q is out of range for %s (%d-%d)", s, b.name, b.min, b.max)
	}
	return n, nil
}

// Next returns the first tick strictly after t, in loc, or the zero time
// when there is none within five years.
func (s *Schedule) Next(t time.Time, loc *time.Location) time.Time {
	if s.every > 0 {
		d := s.every.Milliseconds()
		ms := t.UnixMilli()
		return time.UnixMilli((ms/d + 1) * d).In(loc)
	}
	t = t.In(loc).Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(searchYears, 0, 0)
	for t.Before(limit) {
		if s.month&(1<<uint(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
			continue
		}
		if !s.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
			continue
		}
		if s.hour&(1<<uint(t.Hour())) == 0 {
			next := time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, loc)
			if !next.After(t) { // a DST fold can map the next hour back
				next = t.Add(time.Hour).Truncate(time.Hour)
			}
			t = next
			continue
		}
		if s.minute&(1<<uint(t.Minute())) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}

// Prev returns the latest tick at or before t (zero when there is none
// within five years). It is used to find the last tick missed while the
// hub was down without enqueuing every one of them.
func (s *Schedule) Prev(after, t time.Time, loc *time.Location) time.Time {
	if s.every > 0 {
		d := s.every.Milliseconds()
		p := time.UnixMilli(t.UnixMilli() / d * d).In(loc)
		if !p.After(after) {
			return time.Time{}
		}
		return p
	}
	// Walk forward from after: bounded by the gap, which callers keep
	// short by starting from the last tick they recorded.
	var last time.Time
	cur := after
	if floor := t.AddDate(-1, 0, 0); cur.Before(floor) {
		cur = floor
	}
	for range 600_000 {
		n := s.Next(cur, loc)
		if n.IsZero() || n.After(t) {
			return last
		}
		last, cur = n, n
	}
	return last
}

func (s *Schedule) dayMatches(t time.Time) bool {
	dom := s.dom&(1<<uint(t.Day())) != 0
	dow := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}
