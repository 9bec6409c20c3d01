package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ElectorConfig configures a PostgreSQL elector.
type ElectorConfig struct {
	// HubID names this hub; unique in the cluster.
	HubID string
	// URL is where this hub answers HTTP (its advertised address).
	URL string
	// Interval is how often a follower tries to take the lead and reads
	// the leader, and how often the leader renews its lease. 0 means
	// 500 ms. A follower also hears a takeover at once (NOTIFY).
	Interval time.Duration
	// Margin is how long before its lease could lapse a leader whose
	// renewals go unanswered steps down (see PGElector), and bounds a
	// follower's round. 0 means 2 s.
	Margin time.Duration
	// Lease is how long a leader may go without renewing before the
	// others end its session (a frozen process keeps its session, and so
	// the lock, alive). A leader keeps the lead through renewals that are
	// slow or fail while its session lives, until Lease-Margin after the
	// last one that answered; it must exceed Interval+Margin so that a
	// healthy leader renews in time. 0 means 8 s.
	Lease time.Duration
	// Logger receives the elector's transitions. nil discards.
	Logger *slog.Logger
}

// keepaliveProbes is how many unanswered TCP keepalive probes, a second
// apart, end a session whose client went silent: the server ends the
// election session of a hub whose machine vanished (no FIN, no RST)
// about Lease plus this many seconds after the last packet from it.
const keepaliveProbes = 3

// sessionKeepalives is asked of the server on the election session. The
// idle time is the lease rounded up, so the server never ends a silent
// leader's session before the followers could (see PGElector): a leader
// that can still run has stepped down by then, a frozen one finds its
// session ended when it thaws.
func sessionKeepalives(lease time.Duration) string {
	idle := int64((lease + time.Second - 1) / time.Second)
	return fmt.Sprintf("SET tcp_keepalives_idle = %d; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = %d", idle, keepaliveProbes)
}

// leaderLockClass is the high half of the advisory lock key ("aclr");
// the low half is the oid of this schema's cluster_leader table, so
// clusters in different schemas of one database elect separately and the
// key never meets the migration lock's.
const leaderLockClass int64 = 0x61636c72

// maxLease bounds ElectorConfig.Lease: a frozen leader is replaced
// after about a lease, and the keepalive idle time follows it.
const maxLease = 5 * time.Minute

// connectTimeout bounds opening the election session (a server that
// accepts and then says nothing must not hold the elector forever).
const connectTimeout = 10 * time.Second

// holdOffIntervals is how many Intervals a hub that lost the lead leaves
// the lock to the others.
const holdOffIntervals = 5

// heartbeatEvery is how many Intervals pass between two refreshes of
// this hub's cluster_hubs row.
const heartbeatEvery = 4

// forgetEvery is how many Intervals pass between two deletions, by the
// leader, of cluster_hubs rows not refreshed for an hour.
const forgetEvery = 600

// PGElector elects the leader with a session-level advisory lock on a
// connection of its own: whoever holds the lock leads, and the lock goes
// with the session, so a leader whose process dies (or whose session the
// server ends) frees it at once. The taker bumps the epoch in the one
// cluster_leader row and notifies; followers read the row on the
// notification and every Interval.
//
// Takeover bound: a follower tries the lock every Interval, so after a
// leader's process dies another leads within about Interval (plus the
// server's noticing the dead session: at once for a dead process, about
// Lease+3 s of keepalives for a vanished machine). A leader that stops
// renewing its lease while its session lives on (a frozen process, a cut
// path whose far end still answers) has it ended by the followers after
// Lease plus one Interval, and is replaced in the round after.
//
// The lock is a session's: as for the PostgreSQL bus, the database must
// be reached directly or through a session-mode pooler.
//
// Safety: at most one hub leads at a time. Why:
//
//  1. A hub leads only while its election session S holds the advisory
//     lock: from the round that took the lock until it reports the loss
//     (Leader{} on Changes), which it does when a query finds S closed,
//     when its epoch is over, at its deadline (3.), and before it closes
//     S itself at Stop. The hub stops its domain on that report.
//  2. Another hub can take the lock only once S has ended.
//  3. Let c be when this hub sent the last renewal that answered (on S,
//     with its epoch): S was alive and held the lock then, and a session
//     never gets a lost lock back, so it held the lock from the take
//     until c. The leader steps down at c+Lease-Margin unless a later
//     renewal answers. A renewal that is merely slow, or fails while S
//     is still open, is therefore no reason to step down: it proves
//     nothing was lost, and the deadline still holds.
//  4. S ends without this hub closing it only (a) when the server ends a
//     silent client by keepalives, no sooner than c+Lease+3 s, or (b)
//     when a follower ends it after reading the row's renewed_at (set by
//     the server at or after c) older than Lease on two rounds, so after
//     c+Lease, or (c) by hand (pg_terminate_backend, a server restart),
//     which this hub's pending or next query reports at once.
//
// So in (a) and (b) a successor takes the lock at least Margin after
// this hub's own deadline: the Margin absorbs its timer firing late
// under CPU starvation and its domain's stopping, and the successor then
// loads the whole domain before it acts. Only a process stalled longer
// than Margin past its deadline, or case (c), can overlap; the epoch
// then fences the relay (followers relay in the new term, the old
// leader's relay drops them) and task reports are fenced by assignment
// generation.
//
// Renewals are thus never cancelled by a short timeout: pgx closes the
// connection when a query's context ends, which would end S and give the
// lock up, turning a slow check into a real loss.
type PGElector struct {
	pool *pgxpool.Pool
	cfg  ElectorConfig
	log  *slog.Logger

	changes chan Leader
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// Owned by the campaign goroutine (and Start before it).
	conn    *pgx.Conn
	key     int64
	channel string
	leading bool
	steps   int
	// holdOff: after losing the lead this hub does not try the lock again
	// before then, leaving the lead to a hub whose session is healthy.
	holdOff time.Time
	// epoch is the term this hub leads (while leading).
	epoch int64
	// confirmed is when this hub sent the last renewal (or the take) that
	// answered, while leading: it leads until confirmed+Lease-Margin
	// unless a later one answers (see PGElector).
	confirmed time.Time
	// lapsed is the epoch whose lease this follower last saw lapsed: a
	// lease seen lapsed twice in a row, a round apart, ends the holder's
	// session (once only, a leader that took the lock a moment ago has
	// not written its row yet).
	lapsed int64

	mu      sync.Mutex
	leader  Leader
	started bool
	stopped bool
	closed  bool // changes is closed
}

var _ Elector = (*PGElector)(nil)

// NewPGElector returns an elector over the database of pool; Start joins
// the election. The cluster tables (migration 0005) must exist.
func NewPGElector(pool *pgxpool.Pool, cfg ElectorConfig) (*PGElector, error) {
	if cfg.HubID == "" {
		return nil, errors.New("cluster: elector: empty hub id")
	}
	if len(cfg.HubID) > 200 || len(cfg.URL) > 2048 {
		return nil, errors.New("cluster: elector: hub id or URL too long")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	if cfg.Margin <= 0 {
		cfg.Margin = 2 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 8 * time.Second
	}
	if cfg.Lease <= cfg.Interval+cfg.Margin {
		return nil, fmt.Errorf("cluster: elector: the lease (%s) must exceed Interval+Margin (%s)", cfg.Lease, cfg.Interval+cfg.Margin)
	}
	if cfg.Lease > maxLease {
		return nil, fmt.Errorf("cluster: elector: the lease (%s) exceeds %s", cfg.Lease, maxLease)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &PGElector{pool: pool, cfg: cfg, log: log, changes: make(chan Leader, 64)}, nil
}

// Self implements Elector.
func (e *PGElector) Self() string { return e.cfg.HubID }

// Leader implements Elector. Its HubID is empty while no leader is known
// (before Start, and from losing the lead until the next is known).
func (e *PGElector) Leader() Leader {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// Changes implements Elector. The first change is the leader Start
// found. A Leader with an empty HubID means none is known: this hub lost
// the lead (its session is gone) or stopped leading at Stop. The channel
// is closed when Stop returns. A reader more than 64 changes behind loses
// the oldest.
func (e *PGElector) Changes() <-chan Leader { return e.changes }

// Start implements Elector: it connects, tries to take the lead, and
// otherwise waits until the leader's row is readable.
func (e *PGElector) Start(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("cluster: elector started twice")
	}
	e.started = true
	e.mu.Unlock()
	if err := e.connect(ctx); err != nil {
		return fmt.Errorf("cluster: elector: %w", err)
	}
	for {
		err := e.step(ctx)
		if err != nil {
			e.closeConn()
			return fmt.Errorf("cluster: elector: %w", err)
		}
		if e.Leader().HubID != "" {
			break
		}
		// Someone holds the lock but has not written its row yet.
		if _, err := e.wait(ctx); err != nil && ctx.Err() != nil {
			e.closeConn()
			return fmt.Errorf("cluster: elector: %w", ctx.Err())
		}
	}
	e.mu.Lock()
	stopped := e.stopped
	if !stopped {
		e.ctx, e.cancel = context.WithCancel(context.Background())
		e.wg.Add(1)
	}
	e.mu.Unlock()
	if stopped {
		// Stop came while Start was campaigning.
		e.resign()
		return errors.New("cluster: elector stopped while starting")
	}
	go e.run()
	return nil
}

// Stop implements Elector: a leader releases the lock and notifies, so a
// follower takes over at once.
func (e *PGElector) Stop() {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return
	}
	e.stopped = true
	cancel := e.cancel
	e.mu.Unlock()
	if cancel != nil {
		cancel()
		e.wg.Wait()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	close(e.changes)
}

func (e *PGElector) connect(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	c, err := pgx.ConnectConfig(ctx, e.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	var oid int64
	if _, err = c.Exec(ctx, sessionKeepalives(e.cfg.Lease)); err == nil {
		err = c.QueryRow(ctx, "SELECT 'cluster_leader'::regclass::oid::bigint").Scan(&oid)
	}
	if err == nil {
		e.key = leaderLockClass<<32 | oid
		e.channel = "agentcom_leader_" + strconv.FormatInt(oid, 10)
		_, err = c.Exec(ctx, "LISTEN "+pgx.Identifier{e.channel}.Sanitize())
	}
	if err != nil {
		c.Close(context.Background())
		return fmt.Errorf("prepare the election session: %w", err)
	}
	e.conn, e.leading = c, false
	return nil
}

func (e *PGElector) closeConn() {
	if e.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		e.conn.Close(ctx)
		cancel()
		e.conn = nil
	}
}

// heartbeatSQL refreshes this hub's cluster_hubs row.
const heartbeatSQL = `INSERT INTO cluster_hubs (hub_id, url) VALUES ($1, $2)
	ON CONFLICT (hub_id) DO UPDATE SET url = EXCLUDED.url, seen_at = now()`

// step is one round: a follower tries the lock (taking the lead when it
// gets it) or reads the leader; the leader renews its lease.
func (e *PGElector) step(ctx context.Context) error {
	e.steps++
	if e.leading {
		return e.renew(ctx)
	}
	// A follower holds no lock: a round cut short by its timeout (pgx then
	// closes the session) costs a reconnection, nothing more.
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Margin)
	defer cancel()
	sent := time.Now()
	if e.steps%heartbeatEvery == 1 {
		if _, err := e.conn.Exec(ctx, heartbeatSQL, e.cfg.HubID, e.cfg.URL); err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
	}
	var got bool
	if time.Now().After(e.holdOff) {
		if err := e.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", e.key).Scan(&got); err != nil {
			return fmt.Errorf("try the leader lock: %w", err)
		}
	}
	if got {
		var epoch int64
		err := e.conn.QueryRow(ctx, `WITH u AS (
				INSERT INTO cluster_leader (id, hub_id, url, epoch) VALUES (1, $1, $2, 1)
				ON CONFLICT (id) DO UPDATE SET hub_id = EXCLUDED.hub_id, url = EXCLUDED.url,
					epoch = cluster_leader.epoch + 1, since = now(), renewed_at = now()
				RETURNING epoch)
			SELECT epoch FROM u, pg_notify($3, u.epoch::text)`, e.cfg.HubID, e.cfg.URL, e.channel).Scan(&epoch)
		if err != nil {
			// The lock is ours but the row is not: give the lock back (the
			// caller closes the session) rather than lead unannounced.
			return fmt.Errorf("take the lead: %w", err)
		}
		e.leading, e.epoch, e.confirmed = true, epoch, sent
		e.log.Info("cluster: this hub leads", "hub", e.cfg.HubID, "epoch", epoch)
		e.set(Leader{HubID: e.cfg.HubID, URL: e.cfg.URL, Epoch: epoch})
		return nil
	}
	var l Leader
	var lapsed bool
	err := e.conn.QueryRow(ctx, "SELECT hub_id, url, epoch, renewed_at < now() - make_interval(secs => $1) FROM cluster_leader WHERE id = 1",
		e.cfg.Lease.Seconds()).Scan(&l.HubID, &l.URL, &l.Epoch, &lapsed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the leader: %w", err)
	}
	e.checkLease(ctx, l, lapsed)
	if l.HubID == e.cfg.HubID {
		// The row names this hub from an earlier session, gone (the lock
		// was free but another took it first) or cut off (its lease is left
		// to lapse): not a leader to follow.
		return nil
	}
	if cur := e.Leader(); l.Epoch > cur.Epoch || cur.HubID == "" {
		e.set(l)
	}
	return nil
}

// stepDownAt is when a leader whose renewals go unanswered stops
// leading: Margin before any follower may end its session.
func (e *PGElector) stepDownAt() time.Time { return e.confirmed.Add(e.cfg.Lease - e.cfg.Margin) }

// errLeaseUnconfirmed: no renewal answered before the leader's deadline.
var errLeaseUnconfirmed = errors.New("no renewal answered within the lease less the margin")

// renew is the leader's round. Its queries are bounded by the deadline,
// not by a timeout of their own (see PGElector): one that is slow, or
// fails while the session stays open, leaves the lead in place (the
// session holds the lock still) and the next round retries. Only a
// closed session, an epoch that is over, or the deadline end the lead.
func (e *PGElector) renew(ctx context.Context) error {
	deadline := e.stepDownAt()
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	// failed is the round's outcome after a query failed with err: the
	// end of the lead when the deadline passed or the session is gone
	// (pgx closes it on any error but a statement's own, and when ctx
	// ends), else nil: the session holds the lock still.
	failed := func(what string, err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w: %w", what, errLeaseUnconfirmed, err)
		}
		if e.conn.IsClosed() {
			return fmt.Errorf("%s: %w", what, err)
		}
		e.log.Warn("cluster: "+what+" failed; the session still holds the lead", "hub", e.cfg.HubID,
			"epoch", e.epoch, "err", err, "step_down_in_ms", time.Until(deadline).Milliseconds())
		return nil
	}
	sent := time.Now()
	if !sent.Before(deadline) {
		return fmt.Errorf("renew the lead: %w", errLeaseUnconfirmed)
	}
	if e.steps%heartbeatEvery == 1 {
		if _, err := e.conn.Exec(ctx, heartbeatSQL, e.cfg.HubID, e.cfg.URL); err != nil {
			return failed("heartbeat", err)
		}
	}
	tag, err := e.conn.Exec(ctx, "UPDATE cluster_leader SET renewed_at = now() WHERE id = 1 AND epoch = $1", e.epoch)
	if err != nil {
		return failed("renew the lead", err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("renew the lead: epoch %d is over", e.epoch)
	}
	e.confirmed = sent
	if took := time.Since(sent); took > e.cfg.Margin {
		e.log.Warn("cluster: slow lease renewal", "hub", e.cfg.HubID, "epoch", e.epoch, "took_ms", took.Milliseconds())
	}
	if e.steps%forgetEvery == 1 {
		// Rows of hubs gone for long are history, not members.
		if _, err := e.conn.Exec(ctx, "DELETE FROM cluster_hubs WHERE seen_at < now() - interval '1 hour'"); err != nil {
			return failed("forget departed hubs", err)
		}
	}
	return nil
}

// checkLease ends the session holding the lock when the leader's lease
// has lapsed twice in a row: its process is frozen or cut off while its
// session lives on, and the lock with it. Once that session is gone the
// lock is free for the next round. Ending another session of the same
// role needs no privilege beyond the hubs' own.
func (e *PGElector) checkLease(ctx context.Context, l Leader, lapsed bool) {
	if !lapsed || !time.Now().After(e.holdOff) {
		e.lapsed = 0
		return
	}
	if e.lapsed != l.Epoch {
		e.lapsed = l.Epoch
		return
	}
	e.lapsed = 0
	var ended int
	err := e.conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 1) t`,
		e.key>>32, e.key&0xffffffff).Scan(&ended)
	if err != nil {
		e.log.Warn("cluster: end the session of a leader whose lease lapsed", "leader", l.HubID, "epoch", l.Epoch, "err", err)
		return
	}
	e.log.Warn("cluster: the leader's lease lapsed: its session was ended", "leader", l.HubID, "epoch", l.Epoch,
		"lease", e.cfg.Lease, "sessions_ended", ended)
}

// set records a change of leader and delivers it. The send happens under
// mu (it never blocks), so a change Leader() shows is already on Changes.
func (e *PGElector) set(l Leader) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.leader == l {
		return
	}
	e.leader = l
	for !e.closed {
		select {
		case e.changes <- l:
			return
		default:
		}
		// Full: the reader is far behind; drop its oldest change.
		select {
		case <-e.changes:
		default:
		}
	}
}

// wait blocks until a notification on the leader channel, or Interval
// (a leader's deadline when sooner: it steps down on time even while
// its renewals fail); it reports whether a notification came.
func (e *PGElector) wait(ctx context.Context) (bool, error) {
	d := e.cfg.Interval
	if e.leading {
		d = max(min(d, time.Until(e.stepDownAt())), 0)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := e.conn.WaitForNotification(ctx)
	if err == nil {
		return true, nil
	}
	if !e.conn.IsClosed() && ctx.Err() != nil {
		return false, nil
	}
	return false, err
}

// run campaigns until Stop.
func (e *PGElector) run() {
	defer e.wg.Done()
	backoff := e.cfg.Interval
	for e.ctx.Err() == nil {
		if e.conn == nil {
			if err := e.connect(e.ctx); err != nil {
				if e.ctx.Err() == nil {
					e.log.Warn("cluster: elector reconnect failed", "err", err, "retry_in", backoff)
				}
				if !sleepCtx(e.ctx, backoff) {
					break
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			backoff = e.cfg.Interval
		}
		_, err := e.wait(e.ctx)
		if err == nil && e.ctx.Err() == nil {
			err = e.step(e.ctx)
		}
		if e.ctx.Err() != nil {
			break
		}
		if err != nil {
			e.lost(err)
		}
	}
	e.resign()
}

// lost handles a failed session: a leader reports the loss before
// anything else, then the session is replaced.
func (e *PGElector) lost(err error) {
	if e.leading {
		e.log.Error("cluster: this hub lost the lead", "hub", e.cfg.HubID, "err", err)
		e.leading = false
		e.holdOff = time.Now().Add(holdOffIntervals * e.cfg.Interval)
		e.set(Leader{})
	} else {
		e.log.Warn("cluster: elector session lost", "err", err)
	}
	e.closeConn()
}

// resign ends the session at Stop: a leader unlocks and notifies first,
// so a follower need not wait for its next round.
func (e *PGElector) resign() {
	if e.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Margin)
	defer cancel()
	if e.leading {
		if _, err := e.conn.Exec(ctx, "SELECT pg_advisory_unlock($1), pg_notify($2, 'resigned')", e.key, e.channel); err != nil {
			e.log.Warn("cluster: resign", "err", err)
		}
		e.leading = false
		e.log.Info("cluster: this hub stepped down", "hub", e.cfg.HubID)
		e.set(Leader{})
	}
	if _, err := e.conn.Exec(ctx, "DELETE FROM cluster_hubs WHERE hub_id = $1", e.cfg.HubID); err != nil {
		e.log.Warn("cluster: leave the hub list", "err", err)
	}
	e.closeConn()
}

// Members lists the hubs of a cluster that are alive; both electors
// implement it (for the dashboard and /api/cluster).
type Members interface {
	Hubs(ctx context.Context) ([]Hub, error)
}

var (
	_ Members = (*PGElector)(nil)
	_ Members = (*StaticElector)(nil)
)

// Hub is one hub of the cluster as its heartbeat row shows it.
type Hub struct {
	ID        string
	URL       string
	StartedAt time.Time
	SeenAt    time.Time
}

// Hubs lists the hubs whose heartbeat is recent (a few Intervals), by id.
func (e *PGElector) Hubs(ctx context.Context) ([]Hub, error) {
	stale := 3 * heartbeatEvery * e.cfg.Interval
	rows, err := e.pool.Query(ctx, `SELECT hub_id, url, started_at, seen_at FROM cluster_hubs
		WHERE seen_at > now() - make_interval(secs => $1) ORDER BY hub_id LIMIT 10000`, stale.Seconds())
	if err != nil {
		return nil, fmt.Errorf("cluster: list hubs: %w", err)
	}
	hubs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Hub, error) {
		var h Hub
		err := r.Scan(&h.ID, &h.URL, &h.StartedAt, &h.SeenAt)
		return h, err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: list hubs: %w", err)
	}
	return hubs, nil
}
