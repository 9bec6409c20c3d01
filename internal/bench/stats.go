package bench

import (
	"slices"
	"time"
)

// latencies is a set of samples. Each simulated agent fills its own set
// from its reader goroutine, so recording needs no lock; sets are merged
// once the phase is over.
type latencies []time.Duration

func (l *latencies) add(d time.Duration) { *l = append(*l, d) }

// merge concatenates sets into one sorted set.
func merge(sets ...latencies) latencies {
	n := 0
	for _, s := range sets {
		n += len(s)
	}
	out := make(latencies, 0, n)
	for _, s := range sets {
		out = append(out, s...)
	}
	slices.Sort(out)
	return out
}

// quantile returns the q-quantile (0..1) of a sorted set by the nearest
// rank method, or 0 for an empty set.
func (l latencies) quantile(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(q*float64(len(l))+0.5) - 1
	return l[min(max(i, 0), len(l)-1)]
}

func (l latencies) max() time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[len(l)-1]
}

// percentileFigures turns a sorted set into p50/p90/p99/max figures in
// milliseconds, named prefix + "_p50" and so on.
func (l latencies) percentileFigures(prefix string) []Figure {
	return []Figure{
		{Name: prefix + "_p50", Value: ms(l.quantile(0.50)), Unit: "ms"},
		{Name: prefix + "_p90", Value: ms(l.quantile(0.90)), Unit: "ms"},
		{Name: prefix + "_p99", Value: ms(l.quantile(0.99)), Unit: "ms"},
		{Name: prefix + "_max", Value: ms(l.max()), Unit: "ms"},
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// rate is count per second over d (0 when d is 0).
func rate(count int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(count) / d.Seconds()
}
