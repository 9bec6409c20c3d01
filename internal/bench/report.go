package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as one JSON object.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteTable writes the report for people: a header on the machine and
// the hub, then one table of figures per scenario with their targets.
func (rep *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "AgentCom bench, %s, %s %s, %d CPUs (GOMAXPROCS %d), open-file limit %d\n",
		rep.Started.Format("2006-01-02 15:04:05 MST"), rep.GoVersion, rep.Platform, rep.NumCPU, rep.GOMAXPROCS, rep.OpenFiles)
	fmt.Fprintf(w, "load average: %s at start, %s at end; %.1fs in all\n", rep.LoadAvg, rep.LoadAvgEnd, rep.ElapsedSecs)
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, res := range rep.Scenarios {
		fmt.Fprintf(w, "\n== %s  (hub: %s; %s; load avg %s; %.1fs)\n", res.Scenario, res.Hub, params(res.Params), res.LoadAvg, res.Elapsed)
		if len(res.Figures) > 0 {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "figure\tvalue\tunit\t\ttarget\tmet\t")
			for _, f := range res.Figures {
				met := ""
				if f.Met != nil {
					met = map[bool]string{true: "yes", false: "NO"}[*f.Met]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t\t%s\t%s\t\n", f.Name, number(f.Value), f.Unit, f.Target, met)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		for _, n := range res.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
		if res.Error != "" {
			fmt.Fprintf(w, "  ERROR: %s\n", res.Error)
		}
	}
	return nil
}

func params(p map[string]any) string {
	keys := slices.Sorted(maps.Keys(p))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, p[k])
	}
	return strings.Join(parts, " ")
}

// number prints a figure with thousands separators for large values and
// up to three decimals for small ones.
func number(v float64) string {
	switch {
	case v >= 10000 || v <= -10000:
		return group(strconv.FormatFloat(v, 'f', 0, 64))
	case v >= 100 || v <= -100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
