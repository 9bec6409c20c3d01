package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PGBusConfig tunes the PostgreSQL bus. The zero value is usable.
type PGBusConfig struct {
	BusConfig
	// PayloadTTL is how long a stored payload (one too large for a
	// NOTIFY) stays for the hubs to fetch; older rows are deleted.
	// 0 means 5 minutes.
	PayloadTTL time.Duration
	// HealthInterval is how often an idle listening connection is
	// checked, so that a silently dead one is replaced. 0 means 15 s.
	HealthInterval time.Duration
}

// notifyLimit is PostgreSQL's bound on a NOTIFY payload: it must be
// shorter than 8000 bytes.
const notifyLimit = 7999

// Notification payload kinds: the first byte says how the rest carries
// the message.
const (
	kindText   = 't' // the message as is (valid UTF-8, no NUL)
	kindBase64 = 'b' // the message in standard base64
	kindStored = 'r' // the id of a cluster_bus_payloads row
)

// subscribeWait bounds how long Subscribe waits for LISTEN while the
// listening connection is being re-established.
const subscribeWait = 10 * time.Second

// PGBus is the Bus over PostgreSQL LISTEN/NOTIFY, for hubs that share a
// database and nothing else. It holds two connections of its own, outside
// the pool: one listens, one publishes (one publishing session keeps this
// bus's messages on a subject in order, as PostgreSQL delivers
// notifications in commit order). Stored payloads are fetched through the
// pool.
//
// Channels are database-wide while a cluster is one schema, so a
// subject's channel is named from a hash of the schema and the subject:
// clusters in different schemas of one database never hear each other,
// and any subject fits the 63-byte identifier limit.
//
// LISTEN needs a session of its own: the database URL must reach
// PostgreSQL directly or through a session-mode pooler, never a
// transaction-mode one (PgBouncer's default), which would hand the
// listening session's notifications to nobody.
type PGBus struct {
	pool  *pgxpool.Pool
	cfg   PGBusConfig
	scope string
	// utf8 is whether the database's encoding is UTF-8: otherwise only
	// ASCII travels as text (the server would convert, or refuse, the rest).
	utf8 bool
	d    *dispatcher

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Publishing: Publish queues a request and waits; one goroutine owns
	// the publishing session and sends what is queued in one round trip.
	pubQ      chan *pubReq
	pub       *pgx.Conn // owned by the publishing goroutine
	closeMu   sync.RWMutex
	pubClosed bool

	mu         sync.Mutex
	channels   map[string]string // channel → subject, what the listener must LISTEN to
	waiters    []chan struct{}   // closed once the listener has applied channels
	cancelWait context.CancelFunc
}

var _ Bus = (*PGBus)(nil)

// NewPGBus connects the bus's connections to the database of pool. The
// cluster tables (migration 0005) must exist.
func NewPGBus(ctx context.Context, pool *pgxpool.Pool, cfg PGBusConfig) (*PGBus, error) {
	if cfg.PayloadTTL <= 0 {
		cfg.PayloadTTL = 5 * time.Minute
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = 15 * time.Second
	}
	b := &PGBus{pool: pool, cfg: cfg, channels: map[string]string{}, pubQ: make(chan *pubReq, pubQueue)}
	var scope *string
	var encoding string
	var tables bool
	if err := pool.QueryRow(ctx, "SELECT current_schema(), current_setting('server_encoding'), to_regclass('cluster_bus_payloads') IS NOT NULL").
		Scan(&scope, &encoding, &tables); err != nil {
		return nil, fmt.Errorf("postgres bus: %w", err)
	}
	if !tables {
		return nil, errors.New("postgres bus: the cluster tables are missing: run agentcom migrate --store URL")
	}
	b.utf8 = encoding == "UTF8"
	if scope != nil {
		b.scope = *scope
	}
	listenConn, err := b.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres bus: listening connection: %w", err)
	}
	if b.pub, err = b.connect(ctx); err != nil {
		listenConn.Close(context.Background())
		return nil, fmt.Errorf("postgres bus: publishing connection: %w", err)
	}
	b.d = newDispatcher(cfg.BusConfig, b.watch, b.unwatch)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Add(3)
	go b.listen(listenConn)
	go b.publisher()
	go b.janitor()
	return b, nil
}

func (b *PGBus) connect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	return pgx.ConnectConfig(ctx, b.pool.Config().ConnConfig.Copy())
}

// channel names subject's NOTIFY channel.
func (b *PGBus) channel(subject string) string {
	h := sha256.Sum256([]byte(b.scope + "\x00" + subject))
	return "agentcom_bus_" + hex.EncodeToString(h[:16])
}

// Publishing in batches: the requests queued while a round trip is under
// way go together in the next one (pipelined statements, one implicit
// transaction), so concurrent publishers share round trips; a lone one
// waits for nothing.
const (
	pubQueue         = 1024
	pubBatch         = 128
	pubBatchStored   = 8 << 20 // stored bytes in one batch (a larger payload goes alone)
	pubRoundTripTime = 30 * time.Second
)

type pubReq struct {
	channel string
	notify  string // the notification payload; empty when stored is set
	stored  []byte
	done    chan error
}

// Publish implements Bus. A payload that fits a NOTIFY travels in it;
// a larger one is stored and its id travels, in the same statement.
// Publish returns once the message is committed (or has failed).
func (b *PGBus) Publish(ctx context.Context, subject string, payload []byte) error {
	if err := checkPublish(subject, payload); err != nil {
		return err
	}
	r := &pubReq{channel: b.channel(subject), done: make(chan error, 1)}
	switch {
	case 1+len(payload) <= notifyLimit && b.isText(payload):
		r.notify = string(kindText) + string(payload)
	case 1+base64.StdEncoding.EncodedLen(len(payload)) <= notifyLimit:
		r.notify = string(kindBase64) + base64.StdEncoding.EncodeToString(payload)
	default:
		r.stored = payload
	}
	b.closeMu.RLock()
	if b.pubClosed {
		b.closeMu.RUnlock()
		return ErrBusClosed
	}
	select {
	case b.pubQ <- r:
	case <-ctx.Done():
		b.closeMu.RUnlock()
		return ctx.Err()
	}
	b.closeMu.RUnlock()
	select {
	case err := <-r.done:
		if err != nil {
			return fmt.Errorf("postgres bus: publish %s: %w", subject, err)
		}
		return nil
	case <-ctx.Done():
		// The message may still go out: the bus is at most once.
		return ctx.Err()
	}
}

// publisher owns the publishing session.
func (b *PGBus) publisher() {
	defer b.wg.Done()
	for {
		var batch []*pubReq
		select {
		case <-b.ctx.Done():
			return
		case r := <-b.pubQ:
			batch = append(batch, r)
		}
		stored := len(batch[0].stored)
	more:
		for len(batch) < pubBatch {
			select {
			case r := <-b.pubQ:
				batch = append(batch, r)
				stored += len(r.stored)
				if stored >= pubBatchStored {
					break more
				}
			default:
				break more
			}
		}
		// A batch is one transaction, and PostgreSQL folds identical
		// notifications of one transaction into one: a repeat starts the
		// next batch.
		for len(batch) > 0 {
			n := distinctPrefix(batch)
			err := b.send(batch[:n])
			for _, r := range batch[:n] {
				r.done <- err
			}
			batch = batch[n:]
		}
	}
}

func distinctPrefix(batch []*pubReq) int {
	seen := make(map[string]bool, len(batch))
	for i, r := range batch {
		if r.stored != nil {
			continue
		}
		k := r.channel + "\x00" + r.notify
		if seen[k] {
			return i
		}
		seen[k] = true
	}
	return len(batch)
}

// send publishes a batch in one round trip, reconnecting a session that
// broke (a new one, still the only one publishing, keeps the order).
func (b *PGBus) send(batch []*pubReq) error {
	ctx, cancel := context.WithTimeout(b.ctx, pubRoundTripTime)
	defer cancel()
	if b.pub == nil || b.pub.IsClosed() {
		if b.pub != nil {
			b.pub.Close(ctx)
			b.pub = nil
		}
		c, err := b.connect(ctx)
		if err != nil {
			return fmt.Errorf("reconnect: %w", err)
		}
		b.pub = c
	}
	var q pgx.Batch
	for _, r := range batch {
		if r.stored == nil {
			q.Queue("SELECT pg_notify($1, $2)", r.channel, r.notify)
		} else {
			q.Queue(`WITH r AS (INSERT INTO cluster_bus_payloads (payload) VALUES ($2) RETURNING id)
				SELECT pg_notify($1, $3 || r.id::text) FROM r`, r.channel, r.stored, string(kindStored))
		}
	}
	return b.pub.SendBatch(ctx, &q).Close()
}

// isText reports whether p can travel as a notification's text as is:
// no NUL, and UTF-8 the database keeps unchanged.
func (b *PGBus) isText(p []byte) bool {
	for _, c := range p {
		if c == 0 || (c >= 0x80 && !b.utf8) {
			return false
		}
	}
	return !b.utf8 || utf8.Valid(p)
}

// Subscribe implements Bus. It returns once the listening session
// listens to subject (messages published after it returns arrive).
func (b *PGBus) Subscribe(subject string, fn func(payload []byte)) (func(), error) {
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	return b.d.subscribe(subject, fn)
}

// Close implements Bus.
func (b *PGBus) Close() error {
	if !b.d.close() {
		return nil
	}
	b.closeMu.Lock()
	b.pubClosed = true
	b.closeMu.Unlock()
	b.cancel()
	b.wg.Wait()
	for drained := false; !drained; {
		select {
		case r := <-b.pubQ:
			r.done <- ErrBusClosed
		default:
			drained = true
		}
	}
	if b.pub != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.pub.Close(ctx)
		b.pub = nil
	}
	return nil
}

// watch adds subject's channel to what the listener listens to and waits
// until it does.
func (b *PGBus) watch(subject string) error {
	done := make(chan struct{})
	b.mu.Lock()
	b.channels[b.channel(subject)] = subject
	b.waiters = append(b.waiters, done)
	if b.cancelWait != nil {
		b.cancelWait()
	}
	b.mu.Unlock()
	t := time.NewTimer(subscribeWait)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-b.ctx.Done():
		b.unwatch(subject)
		return ErrBusClosed
	case <-t.C:
		b.unwatch(subject)
		return errors.New("postgres bus: the listening connection is down, reconnecting")
	}
}

func (b *PGBus) unwatch(subject string) {
	b.mu.Lock()
	delete(b.channels, b.channel(subject))
	if b.cancelWait != nil {
		b.cancelWait()
	}
	b.mu.Unlock()
}

// listen owns the listening connection: it applies the channel set,
// waits for notifications and reconnects (with backoff) when the session
// is lost. Notifications sent while it is disconnected are lost, as the
// bus is at most once.
func (b *PGBus) listen(conn *pgx.Conn) {
	defer b.wg.Done()
	log := b.d.log
	listened := map[string]bool{}
	backoff := 100 * time.Millisecond
	defer func() {
		if conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn.Close(ctx)
			cancel()
		}
	}()
	for b.ctx.Err() == nil {
		if conn == nil {
			c, err := b.connect(b.ctx)
			if err != nil {
				if b.ctx.Err() == nil {
					log.Warn("postgres bus: reconnect failed", "err", err, "retry_in", backoff)
				}
				if !sleepCtx(b.ctx, backoff) {
					return
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			conn, listened, backoff = c, map[string]bool{}, 100*time.Millisecond
			log.Info("postgres bus: listening connection re-established")
		}
		b.mu.Lock()
		want := make(map[string]bool, len(b.channels))
		for ch := range b.channels {
			want[ch] = true
		}
		waiters := b.waiters
		b.waiters = nil
		waitCtx, cancel := context.WithTimeout(b.ctx, b.cfg.HealthInterval)
		b.cancelWait = cancel
		b.mu.Unlock()
		err := b.apply(conn, want, listened)
		if err == nil {
			for _, w := range waiters {
				close(w)
			}
		} else {
			// Those waiting are served after the reconnect.
			b.mu.Lock()
			b.waiters = append(b.waiters, waiters...)
			b.mu.Unlock()
		}
		var n *pgconn.Notification
		if err == nil {
			n, err = conn.WaitForNotification(waitCtx)
		}
		kicked := waitCtx.Err() == context.Canceled
		timedOut := waitCtx.Err() == context.DeadlineExceeded
		cancel()
		switch {
		case b.ctx.Err() != nil:
			return
		case err == nil:
			b.handle(n)
			continue
		case conn.IsClosed():
		case kicked:
			continue
		case timedOut:
			if err = b.ping(conn); err == nil {
				continue
			}
		}
		log.Warn("postgres bus: listening connection lost", "err", err)
		conn.Close(context.Background())
		conn = nil
	}
}

func (b *PGBus) ping(conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	return conn.Ping(ctx)
}

// apply brings the session's LISTENs to want.
func (b *PGBus) apply(conn *pgx.Conn, want, listened map[string]bool) error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	for ch := range want {
		if !listened[ch] {
			if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
				return fmt.Errorf("listen: %w", err)
			}
			listened[ch] = true
		}
	}
	for ch := range listened {
		if !want[ch] {
			if _, err := conn.Exec(ctx, "UNLISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
				return fmt.Errorf("unlisten: %w", err)
			}
			delete(listened, ch)
		}
	}
	return nil
}

// handle decodes a notification and queues it for its subject.
func (b *PGBus) handle(n *pgconn.Notification) {
	b.mu.Lock()
	subject, ok := b.channels[n.Channel]
	b.mu.Unlock()
	if !ok || n.Payload == "" {
		return
	}
	body := n.Payload[1:]
	switch n.Payload[0] {
	case kindText:
		b.d.deliver(subject, message{payload: []byte(body), size: len(body)})
	case kindBase64:
		p, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			b.d.log.Warn("postgres bus: malformed notification dropped", "subject", subject)
			return
		}
		b.d.deliver(subject, message{payload: p, size: len(p)})
	case kindStored:
		id, err := strconv.ParseInt(body, 10, 64)
		if err != nil {
			b.d.log.Warn("postgres bus: malformed notification dropped", "subject", subject)
			return
		}
		b.d.deliver(subject, message{fetch: func() ([]byte, error) { return b.fetch(id) }})
	default:
		b.d.log.Warn("postgres bus: notification of unknown kind dropped", "subject", subject)
	}
}

// fetch reads a stored payload. A row already deleted (the hub was too
// far behind, past PayloadTTL) is a lost message.
func (b *PGBus) fetch(id int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	var p []byte
	err := b.pool.QueryRow(ctx, "SELECT payload FROM cluster_bus_payloads WHERE id = $1", id).Scan(&p)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("stored payload %d is gone (older than %s)", id, b.cfg.PayloadTTL)
	}
	if err != nil {
		return nil, fmt.Errorf("fetch stored payload %d: %w", id, err)
	}
	if len(p) > MaxPayload {
		return nil, fmt.Errorf("stored payload %d: %d bytes, over the bound", id, len(p))
	}
	return p, nil
}

// janitor deletes stored payloads older than PayloadTTL. Every hub runs
// one; the deletes are idempotent.
func (b *PGBus) janitor() {
	defer b.wg.Done()
	t := time.NewTicker(max(b.cfg.PayloadTTL/4, time.Second))
	defer t.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		_, err := b.pool.Exec(ctx, "DELETE FROM cluster_bus_payloads WHERE created_at < now() - make_interval(secs => $1)",
			b.cfg.PayloadTTL.Seconds())
		cancel()
		if err != nil && b.ctx.Err() == nil {
			b.d.log.Warn("postgres bus: delete old stored payloads", "err", err)
		}
	}
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Dropped is how many messages this hub dropped because a subscriber
// did not keep up (see BusConfig.QueueLimit).
func (b *PGBus) Dropped() uint64 { return b.d.dropped.Load() }
