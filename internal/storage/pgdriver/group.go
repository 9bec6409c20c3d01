package pgdriver

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
)

// groupMax bounds the calls one shared transaction carries, so one commit
// (and the locks it holds) stays short however many callers queue.
const groupMax = 128

// group gathers concurrent calls of one hot write into shared
// transactions: every commit costs a WAL flush, so N writers that arrive
// while a commit is in flight ride the next one together instead of
// taking N flushes in turn.
//
// There is no goroutine of its own: the first caller to find no commit
// under way leads. It takes the queue (itself first), runs commit with
// all of it in one transaction, hands each caller its outcome, and passes
// the lead to the first caller that queued meanwhile. A caller returns
// only once its own transaction has committed (or failed), so a nil error
// still means durable.
//
// When a shared transaction fails and PostgreSQL rolled it back (it
// reported an error), each caller runs its call again alone, with its own
// context, so one caller's bad write is not another's error. A failure
// whose outcome is unknown (the connection broke during COMMIT) is every
// caller's error, as it would have been for each alone, unless idempotent
// says running a call twice is harmless.
//
// A caller that queued waits for its transaction even if its context ends
// meanwhile: the write may already be in a shared transaction, and what
// became of it is what the caller must learn. The wait is one commit's.
type group[T any] struct {
	commit     func(ctx context.Context, items []T) error
	idempotent bool

	mu      sync.Mutex
	queue   []*groupCall[T]
	leading bool
}

type groupCall[T any] struct {
	item T
	// turn carries either the lead (lead true) or the call's outcome.
	// It holds one: the lead is always taken before the outcome is sent.
	turn chan groupTurn
}

type groupTurn struct {
	lead  bool
	alone bool // run the call again in its own transaction
	err   error
}

// do runs item's write, in a transaction it may share with concurrent
// callers, and returns once that transaction has ended.
func (g *group[T]) do(ctx context.Context, item T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &groupCall[T]{item: item, turn: make(chan groupTurn, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if g.leading {
		g.mu.Unlock()
		t := <-c.turn
		if !t.lead {
			return g.outcome(ctx, c, t)
		}
		g.mu.Lock()
	}
	g.leading = true
	// The leader is the queue's first call: the first to arrive, or the
	// first the previous leader handed the lead to.
	n := min(len(g.queue), groupMax)
	batch := slices.Clone(g.queue[:n])
	g.queue = slices.Delete(g.queue, 0, n)
	g.mu.Unlock()

	g.run(ctx, batch)

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].turn <- groupTurn{lead: true}
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	return g.outcome(ctx, c, <-c.turn)
}

// run commits batch in one transaction and sends every call its turn.
func (g *group[T]) run(ctx context.Context, batch []*groupCall[T]) {
	items := make([]T, len(batch))
	for i, c := range batch {
		items[i] = c.item
	}
	if len(batch) > 1 {
		// Other callers' writes ride on it: the leader giving up must not
		// abort them.
		ctx = context.WithoutCancel(ctx)
	}
	err := g.commit(ctx, items)
	var pe *pgconn.PgError
	alone := err != nil && len(batch) > 1 && (g.idempotent || errors.As(err, &pe))
	for _, c := range batch {
		c.turn <- groupTurn{alone: alone, err: err}
	}
}

func (g *group[T]) outcome(ctx context.Context, c *groupCall[T], t groupTurn) error {
	if t.alone {
		return g.commit(ctx, []T{c.item})
	}
	return t.err
}
