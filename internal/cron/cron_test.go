package cron

import (
	"strings"
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s: %v", name, err)
	}
	return loc
}

func TestNext(t *testing.T) {
	utc := time.UTC
	base := time.Date(2026, 3, 14, 10, 7, 30, 0, utc) // a Saturday
	cases := []struct {
		expr string
		want time.Time
	}{
		{"* * * * *", time.Date(2026, 3, 14, 10, 8, 0, 0, utc)},
		{"*/15 * * * *", time.Date(2026, 3, 14, 10, 15, 0, 0, utc)},
		{"0 3 * * *", time.Date(2026, 3, 15, 3, 0, 0, 0, utc)},
		{"0 9-17/4 * * mon-fri", time.Date(2026, 3, 16, 9, 0, 0, 0, utc)},
		{"5,10 10 * * *", time.Date(2026, 3, 14, 10, 10, 0, 0, utc)},
		{"0 0 1 jan *", time.Date(2027, 1, 1, 0, 0, 0, 0, utc)},
		{"@hourly", time.Date(2026, 3, 14, 11, 0, 0, 0, utc)},
		{"@weekly", time.Date(2026, 3, 15, 0, 0, 0, 0, utc)},
		{"0 0 * * 7", time.Date(2026, 3, 15, 0, 0, 0, 0, utc)},
		// Both day fields restricted: either matches (the 1st, or a Monday).
		{"0 0 1 * mon", time.Date(2026, 3, 16, 0, 0, 0, 0, utc)},
		{"0 0 29 2 *", time.Date(2028, 2, 29, 0, 0, 0, 0, utc)},
		{"@every 1s", time.Date(2026, 3, 14, 10, 7, 31, 0, utc)},
		{"@every 10m", time.Date(2026, 3, 14, 10, 10, 0, 0, utc)},
	}
	for _, c := range cases {
		s, err := Parse(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if got := s.Next(base, utc); !got.Equal(c.want) {
			t.Errorf("%s: next after %v = %v, want %v", c.expr, base, got, c.want)
		}
	}
	if s, _ := Parse("0 0 30 2 *"); !s.Next(base, utc).IsZero() {
		t.Error("Feb 30 has a next tick")
	}
}

func TestNextInTimeZone(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	s, err := Parse("0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	got := s.Next(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC), ny)
	want := time.Date(2026, 6, 2, 7, 0, 0, 0, time.UTC) // 03:00 EDT
	if !got.Equal(want) {
		t.Fatalf("next = %v, want %v", got.UTC(), want)
	}
	// 02:30 does not exist on the spring-forward day: the next one is the day after.
	s, _ = Parse("30 2 * * *")
	got = s.Next(time.Date(2026, 3, 8, 0, 0, 0, 0, ny), ny)
	if got.Day() == 8 && got.Hour() == 2 {
		t.Fatalf("tick at a non-existent time: %v", got)
	}
}

func TestPrev(t *testing.T) {
	s, _ := Parse("0 * * * *")
	after := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := time.Date(2026, 1, 1, 5, 30, 0, 0, time.UTC)
	if got := s.Prev(after, now, time.UTC); !got.Equal(time.Date(2026, 1, 1, 5, 0, 0, 0, time.UTC)) {
		t.Fatalf("prev = %v", got)
	}
	if got := s.Prev(now, now.Add(10*time.Minute), time.UTC); !got.IsZero() {
		t.Fatalf("prev with no tick in between = %v", got)
	}
	e, _ := Parse("@every 2s")
	if got := e.Prev(after, after.Add(5*time.Second), time.UTC); !got.Equal(after.Add(4 * time.Second)) {
		t.Fatalf("every prev = %v", got)
	}
}

func TestParseErrors(t *testing.T) {
	for expr, want := range map[string]string{
		"":                       "empty",
		"* * * *":                "5 fields",
		"60 * * * *":             "minute",
		"* 24 * * *":             "hour",
		"* * 0 * *":              "day of month",
		"* * * 13 *":             "month",
		"* * * * 8":              "day of week",
		"*/0 * * * *":            "step",
		"5-1 * * * *":            "backwards",
		"@often":                 "unknown macro",
		"@every 10ms":            "between",
		"@every soon":            "duration",
		"1,,2 * * * *":           "empty list item",
		strings.Repeat("*", 200): "longer than",
	} {
		_, err := Parse(expr)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error about %q", expr, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/5 1-3 1,15 jan-mar mon", "@every 1m", "@daily"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := Parse(expr)
		if err != nil {
			return
		}
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		if n := s.Next(base, time.UTC); !n.IsZero() && !n.After(base) {
			t.Fatalf("%q: next %v not after %v", expr, n, base)
		}
	})
}
