// Package ratelimit applies token buckets per agent and action class on the
// agent socket, and per token or client address on HTTP, so one flooding
// client cannot slow the others.
package ratelimit

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Action classes. The agent socket's frame table (agentws) files every
// frame type under one of the first four; ClassNone is not limited.
const (
	ClassNone     = ""         // not limited (identify)
	ClassMessages = "messages" // message, channel_publish
	ClassTasks    = "tasks"    // task submissions over HTTP
	ClassChannels = "channels" // channel subscribe/unsubscribe/history/list
	ClassOther    = "other"    // everything else (task reports, status...)
	ClassHTTP     = "http"     // every authenticated HTTP request, per token or IP
	ClassPublic   = "public"   // every HTTP request without a token, per client address
	ClassRegister = "register" // agent registrations (join secret guesses), per client address
)

// Limit is a sustained rate and a burst.
type Limit struct {
	PerSecond float64
	Burst     int
}

func (l Limit) String() string {
	return strconv.FormatFloat(l.PerSecond, 'f', -1, 64) + ":" + strconv.Itoa(l.Burst)
}

// Limits holds the limit of every class. A zero Limit disables that class.
type Limits map[string]Limit

// DefaultLimits are generous for real agents (a sidecar sends a ping every
// 30 s and a handful of task frames per task) and cut floods.
func DefaultLimits() Limits {
	return Limits{
		ClassMessages: {PerSecond: 50, Burst: 100},
		ClassTasks:    {PerSecond: 20, Burst: 50},
		ClassChannels: {PerSecond: 20, Burst: 40},
		ClassOther:    {PerSecond: 50, Burst: 100},
		ClassHTTP:     {PerSecond: 50, Burst: 100},
		ClassPublic:   {PerSecond: 20, Burst: 50},
		ClassRegister: {PerSecond: 1, Burst: 10},
	}
}

// Bounds of a parsed limit.
const (
	MaxRate  = 1_000_000
	MaxBurst = 1_000_000
)

// Parse reads "class=rate:burst,..." over the defaults, e.g.
// "messages=100:200,http=0:0" (0:0 disables a class). Rates and bursts
// above MaxRate and MaxBurst, negative, or not finite are refused.
func Parse(spec string) (Limits, error) {
	l := DefaultLimits()
	if strings.TrimSpace(spec) == "" {
		return l, nil
	}
	for _, part := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("rate limit %q: want class=rate:burst", part)
		}
		if _, known := l[k]; !known {
			return nil, fmt.Errorf("rate limit %q: unknown class (known: %s)", k, knownClasses())
		}
		rs, bs, ok := strings.Cut(v, ":")
		r, err1 := strconv.ParseFloat(rs, 64)
		b, err2 := strconv.Atoi(bs)
		if !ok || err1 != nil || err2 != nil || !(r >= 0 && r <= MaxRate) || b < 0 || b > MaxBurst {
			return nil, fmt.Errorf("rate limit %q: want class=rate:burst with 0 <= rate <= %d and 0 <= burst <= %d", part, MaxRate, MaxBurst)
		}
		l[k] = Limit{PerSecond: r, Burst: b}
	}
	return l, nil
}

// knownClasses lists the classes of DefaultLimits, sorted.
func knownClasses() string {
	var names []string
	for k := range DefaultLimits() {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// String renders limits in Parse's format, sorted by class.
func (l Limits) String() string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k].String()
	}
	return strings.Join(parts, ",")
}

// Limiter holds the buckets. Buckets idle for longer than a minute are
// dropped by Sweep.
type Limiter struct {
	limits Limits
	now    func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

// New returns a limiter enforcing limits.
func New(limits Limits) *Limiter {
	return &Limiter{limits: limits, now: time.Now, buckets: map[string]*bucket{}}
}

// Limits returns the limits in force.
func (l *Limiter) Limits() Limits { return l.limits }

// AllowClass reports whether one more action of class by key (an agent,
// for the socket's frames) may go through, and how long to wait when it
// may not (agentws.Limiter).
func (l *Limiter) AllowClass(class, key string) (bool, time.Duration) { return l.take(class, key) }

// AllowHTTP limits an HTTP caller by key (api.Limiter): a token's agent
// in the http class, a caller without a token by address in the public
// class.
func (l *Limiter) AllowHTTP(key string, public bool) (bool, int64) {
	class := ClassHTTP
	if public {
		class = ClassPublic
	}
	ok, wait := l.take(class, key)
	return ok, wait.Milliseconds()
}

func (l *Limiter) take(class, key string) (bool, time.Duration) {
	lim, ok := l.limits[class]
	if !ok || lim.PerSecond <= 0 || lim.Burst <= 0 {
		return true, 0
	}
	now := l.now()
	id := class + "\x00" + key
	l.mu.Lock()
	b := l.buckets[id]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(lim.PerSecond), lim.Burst)}
		l.buckets[id] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	l.mu.Unlock()
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Sweep drops buckets idle for more than idle; run it periodically.
func (l *Limiter) Sweep(idle time.Duration) int {
	cutoff := l.now().Add(-idle)
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for k, b := range l.buckets {
		if b.last.Before(cutoff) {
			delete(l.buckets, k)
			n++
		}
	}
	return n
}
