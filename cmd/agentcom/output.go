package main

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/agentcom/agentcom/internal/tasks"
)

// printer writes human output: aligned tables, key/value blocks,
// relative times, and colour when stdout is a terminal (never when piped
// or with NO_COLOR set).
type printer struct {
	w     io.Writer
	color bool
	now   time.Time
}

// style is an ANSI SGR sequence; "" is plain.
type style string

const (
	plain  style = ""
	bold   style = "1"
	dim    style = "2"
	red    style = "31"
	green  style = "32"
	yellow style = "33"
	blue   style = "34"
	cyan   style = "36"
)

// cell is one table cell: its text and how to colour it.
type cell struct {
	text  string
	style style
}

func txt(text string) cell             { return cell{text: text} }
func styled(text string, s style) cell { return cell{text: text, style: s} }
func (p *printer) paint(s style, text string) string {
	if !p.color || s == plain || text == "" {
		return text
	}
	return "\x1b[" + string(s) + "m" + text + "\x1b[0m"
}

// table prints rows under header, columns aligned on their visible width
// (colour codes do not count), the last column unpadded.
func (p *printer) table(header []string, rows [][]cell) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, r := range rows {
		for i, cl := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(cl.text))
		}
	}
	line := func(cells []cell) {
		var b strings.Builder
		for i, cl := range cells {
			b.WriteString(p.paint(cl.style, safe(cl.text)))
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cl.text)+2))
			}
		}
		fmt.Fprintln(p.w, strings.TrimRight(b.String(), " "))
	}
	hc := make([]cell, len(header))
	for i, h := range header {
		hc[i] = styled(h, bold)
	}
	line(hc)
	for _, r := range rows {
		line(r)
	}
}

// field is one "key: value" line of a kv block.
type field struct {
	key string
	val cell
}

func kv(key, val string) field           { return field{key, txt(val)} }
func kvs(key, val string, s style) field { return field{key, styled(val, s)} }

// kv prints "key:  value" lines with the values aligned.
func (p *printer) kv(fields []field) {
	width := 0
	for _, f := range fields {
		width = max(width, len(f.key))
	}
	for _, f := range fields {
		fmt.Fprintf(p.w, "%s  %s\n", p.paint(dim, fmt.Sprintf("%-*s", width+1, f.key+":")), p.paint(f.val.style, safe(f.val.text)))
	}
}

// safe replaces control characters (escape sequences included) of text
// that came from the hub or from other agents, so it cannot drive the
// terminal; newlines and tabs stay.
func safe(s string) string {
	if !strings.ContainsFunc(s, isUnsafe) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isUnsafe(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func isUnsafe(r rune) bool { return r != '\n' && r != '\t' && unicode.IsControl(r) }

// line prints one formatted line; the arguments are made safe (see safe),
// the format is ours.
func (p *printer) line(format string, a ...any) {
	for i, v := range a {
		if s, ok := v.(string); ok {
			a[i] = safeKeepColour(s)
		}
	}
	fmt.Fprintf(p.w, format+"\n", a...)
}

// safeKeepColour is safe for a string that may carry this printer's own
// colour codes: the codes paint emits survive (at worst, text from the hub
// can recolour itself), every other control character does not.
func safeKeepColour(s string) string {
	parts := sgr.Split(s, -1)
	codes := sgr.FindAllString(s, -1)
	var b strings.Builder
	for i, part := range parts {
		b.WriteString(safe(part))
		if i < len(codes) {
			b.WriteString(codes[i])
		}
	}
	return b.String()
}

// safeOutput is an agent's raw output made safe for a terminal: colour
// codes (any SGR sequence) and carriage returns survive, every other
// control sequence does not.
func safeOutput(s string) string {
	parts := anySGR.Split(s, -1)
	codes := anySGR.FindAllString(s, -1)
	var b strings.Builder
	for i, part := range parts {
		b.WriteString(strings.Map(func(r rune) rune {
			if r != '\r' && isUnsafe(r) {
				return '\uFFFD'
			}
			return r
		}, part))
		if i < len(codes) {
			b.WriteString(codes[i])
		}
	}
	return b.String()
}

var anySGR = regexp.MustCompile("\x1b\\[[0-9;:]*m")

var sgr = regexp.MustCompile("\x1b\\[(?:0|1|2|31|32|33|34|36)m")

func (p *printer) heading(s string) { fmt.Fprintf(p.w, "\n%s\n", p.paint(bold, s)) }

// ago renders a Unix-ms time relative to now: "just now", "4m ago",
// "in 2h"; "-" for none.
func (p *printer) ago(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	d := p.now.Sub(time.UnixMilli(ms))
	if d < 0 {
		return "in " + shortDuration(-d)
	}
	if d < 2*time.Second {
		return "just now"
	}
	return shortDuration(d) + " ago"
}

// when renders a Unix-ms time as "4m ago (2026-12-02 09:55:56 UTC)".
func (p *printer) when(ms int64) string {
	if ms <= 0 {
		return "-"
	}
	return p.ago(ms) + " (" + time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05 UTC") + ")"
}

// shortDuration renders d with its two largest units: 45s, 3m12s, 2h5m, 3d4h.
func shortDuration(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return trimZero(fmt.Sprintf("%dm%ds", s/60, s%60))
	case s < 86400:
		return trimZero(fmt.Sprintf("%dh%dm", s/3600, s%3600/60))
	}
	return trimZero(fmt.Sprintf("%dd%dh", s/86400, s%86400/3600))
}

func trimZero(s string) string {
	for _, z := range []string{"0s", "0m", "0h"} {
		if strings.HasSuffix(s, z) && len(s) > len(z) && s[len(s)-len(z)-1] >= 'a' {
			return strings.TrimSuffix(s, z)
		}
	}
	return s
}

// statusStyle colours a task or agent state.
func statusStyle(s string) style {
	switch s {
	case string(tasks.StatusCompleted), "idle", "online", "ok", "healthy", "sent", "acked":
		return green
	case string(tasks.StatusDeadLetter), "failed", "offline", "critical", "unhealthy", "error":
		return red
	case string(tasks.StatusAssigned), "working", "assigned_task", "busy":
		return cyan
	case string(tasks.StatusQueued), "degraded", "warning":
		return yellow
	case string(tasks.StatusCancelled):
		return dim
	}
	return plain
}

// laneStyle colours a priority lane.
func laneStyle(p int) style {
	switch p {
	case tasks.PriorityUrgent:
		return red
	case tasks.PriorityHigh:
		return yellow
	case tasks.PriorityLow:
		return dim
	}
	return plain
}

// oneLine squeezes whitespace and cuts s to n runes with an ellipsis.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
