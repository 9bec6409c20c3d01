package pgdriver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/agentcom/agentcom/internal/storage"
)

// Messages implements storage.Driver.
func (d *Driver) Messages() storage.MessageStore { return messageStore{d} }

type messageStore struct{ d *Driver }

var _ storage.MessageStore = messageStore{}

// channelCreateLock is the transaction advisory lock that serializes
// channel creation, so two hubs cannot both create the last channel under
// the cap ("agchan" in ASCII).
const channelCreateLock int64 = 0x61676368616e

// msgTxAttempts bounds the retries of a transaction PostgreSQL aborted as
// a deadlock victim or a serialization failure.
const msgTxAttempts = 3

// msgTx runs fn in one transaction and commits it. A transaction the
// server aborted because it deadlocked (an append trimming a mailbox while
// an ack or an eviction deletes from it, locking rows in another order) is
// run again: fn must compute everything inside the transaction.
func (s messageStore) msgTx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for range msgTxAttempts {
		err = pgx.BeginFunc(ctx, s.d.pool, fn)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || (pe.Code != "40P01" && pe.Code != "40001") {
			return err
		}
	}
	return err
}

// nextSeqs takes n numbers from counter name inside tx and returns the
// first. The counter row stays locked until tx ends, so numbers commit in
// order and a rollback returns them.
func nextSeqs(ctx context.Context, tx pgx.Tx, name string, n int) (uint64, error) {
	var last int64
	err := tx.QueryRow(ctx, `INSERT INTO agentcom_message_counters (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET value = agentcom_message_counters.value + EXCLUDED.value
		RETURNING value`, name, n).Scan(&last)
	if err != nil {
		return 0, fmt.Errorf("sequence %s: %w", name, err)
	}
	return uint64(last) - uint64(n) + 1, nil
}

// unstorable reports whether s cannot be a stored key: PostgreSQL text
// holds no NUL, so a lookup by such a string finds nothing (instead of
// failing the query).
func unstorable(s string) bool { return strings.IndexByte(s, 0) >= 0 }

// column makes a filter column storable: PostgreSQL text holds no NUL,
// and a filter holding NUL matches nothing anyway (FindHistory).
func column(s string) string { return strings.ReplaceAll(s, "\x00", "\uFFFD") }

// clampSeq maps a caller's uint64 bound onto bigint.
func clampSeq(n uint64) int64 { return int64(min(n, math.MaxInt64)) }

// AppendMessage implements storage.MessageStore. Concurrent appends share
// transactions (group.go): the history counter's row lock makes appends
// take turns anyway, and a shared turn costs one commit instead of one
// each.
func (s messageStore) AppendMessage(ctx context.Context, a storage.Append) (storage.AppendResult, error) {
	if err := storage.CheckAppend(a); err != nil {
		return storage.AppendResult{}, fmt.Errorf("append message: %w", err)
	}
	c := &appendCall{a: a}
	if err := s.d.appends.do(ctx, c); err != nil {
		return storage.AppendResult{}, fmt.Errorf("append message %s: %w", a.Message.ID, err)
	}
	return c.res, nil
}

// appendCall is one AppendMessage call: its argument, and its result once
// its transaction committed.
type appendCall struct {
	channel string // PublishChannel's
	a       storage.Append
	res     storage.AppendResult
}

// appendMessages writes calls in one transaction, with the result each
// would have had alone, one after the other in their order: the history
// numbers follow the order, an entry a later call pushes out is in that
// call's Trimmed, and the thread index and the mailboxes end as the calls
// in turn would leave them. It takes the counters as a lone append does
// (history, then mailbox), so it locks nothing in another order, and it
// writes each table with one statement whatever the number of calls.
func (d *Driver) appendMessages(ctx context.Context, calls []*appendCall) error {
	return messageStore{d}.msgTx(ctx, func(tx pgx.Tx) error {
		first, err := nextSeqs(ctx, tx, "history", len(calls))
		if err != nil {
			return err
		}
		var h struct {
			seqs, ts, storedAt        []int64
			ids, froms, tos, channels []string
			bodies                    [][]byte
		}
		for i, c := range calls {
			c.res = storage.AppendResult{Seq: first + uint64(i), Trimmed: []string{}}
			m := c.a.Message
			ts := m.Timestamp
			if ts == 0 {
				ts = c.a.StoredAt
			}
			h.seqs = append(h.seqs, int64(first)+int64(i))
			h.ts, h.storedAt = append(h.ts, ts), append(h.storedAt, c.a.StoredAt)
			h.ids, h.froms = append(h.ids, m.ID), append(h.froms, column(m.From))
			h.tos, h.channels = append(h.tos, column(m.To)), append(h.channels, column(m.Channel))
			h.bodies = append(h.bodies, m.Body)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO agentcom_message_history (seq, id, from_agent, to_agent, channel, ts, stored_at, body)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::bytea[])`,
			h.seqs, h.ids, h.froms, h.tos, h.channels, h.ts, h.storedAt, h.bodies); err != nil {
			return fmt.Errorf("history: %w", err)
		}
		if err := trimHistory(ctx, tx, calls, int64(first)); err != nil {
			return err
		}
		return finishAppends(ctx, tx, calls)
	})
}

// finishAppends writes what both kinds of shared append have in common,
// once their histories are written and trimmed: the thread index and the
// mailbox copies, each call getting its copies' numbers.
func finishAppends(ctx context.Context, tx pgx.Tx, calls []*appendCall) error {
	if err := indexThreads(ctx, tx, calls); err != nil {
		return err
	}
	var cs []storage.MailboxCopy
	var at []int64
	for _, c := range calls {
		cs = append(cs, c.a.Copies...)
		at = append(at, repeat(c.a.StoredAt, len(c.a.Copies))...)
	}
	seqs, err := insertCopies(ctx, tx, cs, at)
	if err != nil {
		return err
	}
	for _, c := range calls {
		n := len(c.a.Copies)
		c.res.MailboxSeqs, seqs = seqs[:n:n], seqs[n:]
	}
	return nil
}

// trimHistory deletes the entries beyond the cap after calls (numbered
// from first on) and gives each to the call that pushed it out: alone,
// the call numbered n deletes every entry numbered up to n - cap (the
// counter is gapless, see nextSeqs), so entry s falls to call s + cap, or
// to the first call when it was left over from before.
func trimHistory(ctx context.Context, tx pgx.Tx, calls []*appendCall, first int64) error {
	last := first + int64(len(calls)) - 1
	rows, err := tx.Query(ctx, `DELETE FROM agentcom_message_history WHERE seq <= $1 RETURNING seq, id`, last-storage.HistoryCap)
	if err != nil {
		return fmt.Errorf("trim history: %w", err)
	}
	type gone struct {
		Seq int64
		ID  string
	}
	trimmed, err := pgx.CollectRows(rows, pgx.RowToStructByPos[gone])
	if err != nil {
		return fmt.Errorf("trim history: %w", err)
	}
	slices.SortFunc(trimmed, func(a, b gone) int { return cmp.Compare(a.Seq, b.Seq) })
	for _, g := range trimmed {
		c := calls[max(first, g.Seq+storage.HistoryCap)-first]
		c.res.Trimmed = append(c.res.Trimmed, g.ID)
	}
	return nil
}

// indexThreads updates the thread index for calls: the trimmed entries
// leave it, and each message enters it unless a later call of the batch
// trims an entry of the same id (alone, that later trim would delete it
// again). Of messages sharing an id the last wins, as the upsert would.
// They enter in call order, which orders a parent's replies (arrival).
func indexThreads(ctx context.Context, tx pgx.Tx, calls []*appendCall) error {
	var trimmed []string
	trimmedBy := map[string]int{}
	for i, c := range calls {
		trimmed = append(trimmed, c.res.Trimmed...)
		for _, id := range c.res.Trimmed {
			trimmedBy[id] = i
		}
	}
	if len(trimmed) > 0 {
		slices.Sort(trimmed)
		if _, err := tx.Exec(ctx, `DELETE FROM agentcom_thread_messages WHERE id = ANY($1)`, slices.Compact(trimmed)); err != nil {
			return fmt.Errorf("thread index: %w", err)
		}
	}
	lastOf := map[string]int{}
	for i, c := range calls {
		if j, ok := trimmedBy[c.a.Message.ID]; !ok || j <= i {
			lastOf[c.a.Message.ID] = i
		}
	}
	var ids, parents []string
	var bodies [][]byte
	for i, c := range calls {
		if j, ok := lastOf[c.a.Message.ID]; ok && j == i {
			ids, parents = append(ids, c.a.Message.ID), append(parents, c.a.Message.ReplyTo)
			bodies = append(bodies, c.a.Message.Body)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO agentcom_thread_messages (id, parent, body)
		SELECT i, p, b FROM unnest($1::text[], $2::text[], $3::bytea[]) WITH ORDINALITY AS m(i, p, b, n) ORDER BY n
		ON CONFLICT (id) DO UPDATE SET parent = EXCLUDED.parent, body = EXCLUDED.body`,
		ids, parents, bodies); err != nil {
		return fmt.Errorf("thread index: %w", err)
	}
	return nil
}

// PublishChannel implements storage.MessageStore. Concurrent publishes
// share transactions as appends do (AppendMessage).
func (s messageStore) PublishChannel(ctx context.Context, channel string, a storage.Append) (storage.AppendResult, error) {
	if err := storage.CheckName(channel); err != nil {
		return storage.AppendResult{}, fmt.Errorf("publish: %w", err)
	}
	if err := storage.CheckAppend(a); err != nil {
		return storage.AppendResult{}, fmt.Errorf("publish: %w", err)
	}
	c := &appendCall{channel: channel, a: a}
	if err := s.d.publishes.do(ctx, c); err != nil {
		return storage.AppendResult{}, fmt.Errorf("publish %s on %s: %w", a.Message.ID, channel, err)
	}
	return c.res, nil
}

// publishMessages writes publish calls in one transaction, with the
// result each would have had alone, as appendMessages does. The calls may
// name several channels: their counters are taken in name order, and the
// mailbox counter after all of them, as every lone append and publish
// takes the mailbox counter last, so no two transactions wait on each
// other's counters in a circle.
func (d *Driver) publishMessages(ctx context.Context, calls []*appendCall) error {
	return messageStore{d}.msgTx(ctx, func(tx pgx.Tx) error {
		byChannel := map[string][]*appendCall{}
		for _, c := range calls {
			c.res = storage.AppendResult{Trimmed: []string{}}
			byChannel[c.channel] = append(byChannel[c.channel], c)
		}
		var h struct {
			channels, ids  []string
			seqs, storedAt []int64
			bodies         [][]byte
			cutCh          []string
			cuts           []int64
		}
		firsts := map[string]int64{}
		for _, ch := range slices.Sorted(maps.Keys(byChannel)) {
			cs := byChannel[ch]
			first, err := nextSeqs(ctx, tx, "channel:"+ch, len(cs))
			if err != nil {
				return err
			}
			firsts[ch] = int64(first)
			for i, c := range cs {
				c.res.Seq = first + uint64(i)
				h.channels, h.ids = append(h.channels, ch), append(h.ids, c.a.Message.ID)
				h.seqs, h.storedAt = append(h.seqs, int64(c.res.Seq)), append(h.storedAt, c.a.StoredAt)
				h.bodies = append(h.bodies, c.a.Message.Body)
			}
			// Alone, the call numbered n deletes the channel's entries up
			// to n - cap.
			h.cutCh, h.cuts = append(h.cutCh, ch), append(h.cuts, int64(first)+int64(len(cs))-1-storage.ChannelHistoryCap)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO agentcom_channel_history (channel, seq, id, stored_at, body)
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bytea[])`,
			h.channels, h.seqs, h.ids, h.storedAt, h.bodies); err != nil {
			return fmt.Errorf("channel history: %w", err)
		}
		rows, err := tx.Query(ctx, `DELETE FROM agentcom_channel_history h USING unnest($1::text[], $2::bigint[]) AS k(channel, cut)
			WHERE h.channel = k.channel AND h.seq <= k.cut RETURNING h.channel, h.seq, h.id`, h.cutCh, h.cuts)
		if err != nil {
			return fmt.Errorf("trim channel history: %w", err)
		}
		type gone struct {
			Channel string
			Seq     int64
			ID      string
		}
		trimmed, err := pgx.CollectRows(rows, pgx.RowToStructByPos[gone])
		if err != nil {
			return fmt.Errorf("trim channel history: %w", err)
		}
		slices.SortFunc(trimmed, func(a, b gone) int {
			return cmp.Or(strings.Compare(a.Channel, b.Channel), cmp.Compare(a.Seq, b.Seq))
		})
		// Entry s falls to the call numbered s + cap, or to the channel's
		// first call when it was left over from before.
		for _, g := range trimmed {
			first := firsts[g.Channel]
			c := byChannel[g.Channel][max(first, g.Seq+storage.ChannelHistoryCap)-first]
			c.res.Trimmed = append(c.res.Trimmed, g.ID)
		}
		return finishAppends(ctx, tx, calls)
	})
}

// insertCopies numbers and stores mailbox copies (copy i stored at
// storedAt[i]), then trims each recipient's mailbox to its cap.
func insertCopies(ctx context.Context, tx pgx.Tx, cs []storage.MailboxCopy, storedAt []int64) ([]uint64, error) {
	if len(cs) == 0 {
		return []uint64{}, nil
	}
	first, err := nextSeqs(ctx, tx, "mailbox", len(cs))
	if err != nil {
		return nil, err
	}
	agents := make([]string, len(cs))
	seqs := make([]uint64, len(cs))
	ids := make([]int64, len(cs))
	bodies := make([][]byte, len(cs))
	for i, c := range cs {
		agents[i], seqs[i], ids[i], bodies[i] = c.Agent, first+uint64(i), int64(first)+int64(i), c.Body
	}
	if _, err := tx.Exec(ctx, `INSERT INTO agentcom_mailbox_messages (agent, seq, stored_at, body)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bytea[])`,
		agents, ids, storedAt, bodies); err != nil {
		return nil, fmt.Errorf("mailbox: %w", err)
	}
	// Pending copies trim nothing (storage.MailboxCopy): only the other
	// copies' mailboxes are trimmed.
	agents = slices.DeleteFunc(slices.Clone(agents), func(a string) bool {
		return !slices.ContainsFunc(cs, func(c storage.MailboxCopy) bool { return c.Agent == a && !c.Pending })
	})
	slices.Sort(agents)
	// Per agent, the newest entry beyond the cap (read backwards on the
	// primary key, no sort) and everything older goes.
	if _, err := tx.Exec(ctx, `DELETE FROM agentcom_mailbox_messages m USING (
			SELECT a.agent, (SELECT x.seq FROM agentcom_mailbox_messages x WHERE x.agent = a.agent
				ORDER BY x.seq DESC OFFSET $2 LIMIT 1) AS cut
			FROM unnest($1::text[]) AS a(agent)) k
		WHERE m.agent = k.agent AND m.seq <= k.cut`,
		slices.Compact(agents), storage.MailboxCap); err != nil {
		return nil, fmt.Errorf("trim mailbox: %w", err)
	}
	return seqs, nil
}

// repeat is n copies of v.
func repeat(v int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func collectIDs(rows pgx.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if ids == nil {
		ids = []string{}
	}
	return ids, err
}

// DropCopies implements storage.MessageStore. Concurrent drops share
// transactions (group.go), committed without waiting for the WAL flush
// (synchronous_commit off): a drop lost in a crash leaves a copy, which
// delivers a message twice but loses nothing, and a committed drop is
// visible to every later read at once all the same.
func (s messageStore) DropCopies(ctx context.Context, copies []storage.CopyRef) error {
	if len(copies) == 0 {
		return ctx.Err()
	}
	for _, c := range copies {
		if err := storage.CheckName(c.Agent); err != nil {
			return fmt.Errorf("drop mailbox copies: %w", err)
		}
	}
	if err := s.d.drops.do(ctx, copies); err != nil {
		return fmt.Errorf("drop mailbox copies: %w", err)
	}
	return nil
}

// dropCopies deletes the copies of every call in one transaction.
func (d *Driver) dropCopies(ctx context.Context, calls [][]storage.CopyRef) error {
	var agents []string
	var seqs []int64
	for _, refs := range calls {
		for _, r := range refs {
			agents, seqs = append(agents, r.Agent), append(seqs, clampSeq(r.Seq))
		}
	}
	return messageStore{d}.msgTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM agentcom_mailbox_messages m USING unnest($1::text[], $2::bigint[]) AS k(agent, seq)
			WHERE m.agent = k.agent AND m.seq = k.seq`, agents, seqs)
		return err
	})
}

func (s messageStore) Enqueue(ctx context.Context, agent string, body []byte, storedAt int64) (uint64, error) {
	cs := []storage.MailboxCopy{{Agent: agent, Body: body}}
	if err := storage.CheckCopies(cs); err != nil {
		return 0, fmt.Errorf("mailbox enqueue: %w", err)
	}
	var seqs []uint64
	err := s.msgTx(ctx, func(tx pgx.Tx) error {
		var err error
		seqs, err = insertCopies(ctx, tx, cs, []int64{storedAt})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("mailbox enqueue %s: %w", agent, err)
	}
	return seqs[0], nil
}

// collectEntries reads (seq, stored_at, body) rows.
func collectEntries(rows pgx.Rows, err error) ([]storage.Entry, error) {
	if err != nil {
		return nil, err
	}
	out := []storage.Entry{}
	var e storage.Entry
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&n, &e.StoredAt, &e.Body}, func() error {
		out = append(out, storage.Entry{Seq: uint64(n), StoredAt: e.StoredAt, Body: slices.Clone(e.Body)})
		return nil
	})
	return out, err
}

func (s messageStore) PollMailbox(ctx context.Context, agent string, after uint64, limit int) ([]storage.Entry, error) {
	if err := storage.CheckName(agent); err != nil {
		return nil, fmt.Errorf("mailbox poll: %w", err)
	}
	if limit <= 0 {
		return []storage.Entry{}, nil
	}
	out, err := collectEntries(s.d.pool.Query(ctx, `SELECT seq, stored_at, body FROM agentcom_mailbox_messages
		WHERE agent = $1 AND seq > $2 ORDER BY seq LIMIT $3`, agent, clampSeq(after), limit))
	if err != nil {
		return nil, fmt.Errorf("mailbox poll %s: %w", agent, err)
	}
	return out, nil
}

func (s messageStore) AckMailbox(ctx context.Context, agent string, upTo uint64) (int, error) {
	if err := storage.CheckName(agent); err != nil {
		return 0, fmt.Errorf("mailbox ack: %w", err)
	}
	n, err := s.deleteMailbox(ctx, `DELETE FROM agentcom_mailbox_messages WHERE agent = $1 AND seq <= $2`, agent, clampSeq(upTo))
	if err != nil {
		return 0, fmt.Errorf("mailbox ack %s: %w", agent, err)
	}
	return n, nil
}

func (s messageStore) CountMailbox(ctx context.Context, agent string) (int, error) {
	if err := storage.CheckName(agent); err != nil {
		return 0, fmt.Errorf("mailbox count: %w", err)
	}
	var n int
	if err := s.d.pool.QueryRow(ctx, `SELECT count(*) FROM agentcom_mailbox_messages WHERE agent = $1`, agent).Scan(&n); err != nil {
		return 0, fmt.Errorf("mailbox count %s: %w", agent, err)
	}
	return n, nil
}

func (s messageStore) MailboxDepths(ctx context.Context) (map[string]int, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT agent, count(*) FROM agentcom_mailbox_messages GROUP BY agent`)
	if err != nil {
		return nil, fmt.Errorf("mailbox depths: %w", err)
	}
	out := map[string]int{}
	var agent string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&agent, &n}, func() error { out[agent] = n; return nil }); err != nil {
		return nil, fmt.Errorf("mailbox depths: %w", err)
	}
	return out, nil
}

func (s messageStore) EvictMailboxes(ctx context.Context, before int64) (int, error) {
	n, err := s.deleteMailbox(ctx, `DELETE FROM agentcom_mailbox_messages WHERE stored_at < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("mailbox evict: %w", err)
	}
	return n, nil
}

// deleteMailbox runs one DELETE on the mailboxes (retried as msgTx does)
// and returns how many messages it removed.
func (s messageStore) deleteMailbox(ctx context.Context, sql string, args ...any) (int, error) {
	var n int
	err := s.msgTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, sql, args...)
		n = int(tag.RowsAffected())
		return err
	})
	return n, err
}

func (s messageStore) FindHistory(ctx context.Context, f storage.HistoryFilter) ([]storage.Entry, error) {
	if f.Limit <= 0 || f.After >= math.MaxInt64 || unstorable(f.From+f.To+f.Channel) {
		return []storage.Entry{}, nil
	}
	out, err := collectEntries(s.d.pool.Query(ctx, `SELECT seq, stored_at, body FROM agentcom_message_history
		WHERE seq > $1 AND ($2 = '' OR from_agent = $2) AND ($3 = '' OR to_agent = $3)
		AND ($4 = '' OR channel = $4) AND ts >= $5 AND ($6 = 0 OR ts <= $6)
		ORDER BY seq LIMIT $7`,
		int64(f.After), f.From, f.To, f.Channel, f.Start, f.End, f.Limit))
	if err != nil {
		return nil, fmt.Errorf("history query: %w", err)
	}
	return out, nil
}

func (s messageStore) RecentHistory(ctx context.Context, limit int) ([]storage.Entry, error) {
	if limit <= 0 {
		return []storage.Entry{}, nil
	}
	out, err := collectEntries(s.d.pool.Query(ctx, `SELECT seq, stored_at, body FROM (
		SELECT seq, stored_at, body FROM agentcom_message_history ORDER BY seq DESC LIMIT $1) r ORDER BY seq`, limit))
	if err != nil {
		return nil, fmt.Errorf("recent history: %w", err)
	}
	return out, nil
}

func (s messageStore) CountHistory(ctx context.Context) (int, error) {
	var n int
	if err := s.d.pool.QueryRow(ctx, `SELECT count(*) FROM agentcom_message_history`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count history: %w", err)
	}
	return n, nil
}

func (s messageStore) CreateChannel(ctx context.Context, ch storage.ChannelRow, maxChannels int) error {
	if err := storage.CheckName(ch.Name); err != nil {
		return fmt.Errorf("create channel: %w", err)
	}
	if ch.Subscribers == nil {
		ch.Subscribers = []string{}
	}
	err := s.msgTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, channelCreateLock); err != nil {
			return err
		}
		var exists bool
		var count int
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM agentcom_message_channels WHERE name = $1),
			(SELECT count(*) FROM agentcom_message_channels)`, ch.Name).Scan(&exists, &count); err != nil {
			return err
		}
		if exists {
			return storage.ErrChannelExists
		}
		if count >= maxChannels {
			return fmt.Errorf("%w: at most %d channels", storage.ErrChannelLimit, maxChannels)
		}
		_, err := tx.Exec(ctx, `INSERT INTO agentcom_message_channels (name, description, created_at, created_by, subscribers)
			VALUES ($1, $2, $3, $4, $5)`, ch.Name, ch.Description, ch.CreatedAt, ch.CreatedBy, ch.Subscribers)
		return err
	})
	if err != nil {
		return fmt.Errorf("create channel %s: %w", ch.Name, err)
	}
	return nil
}

const channelColumns = `name, description, created_at, created_by, subscribers`

func scanChannel(row pgx.Row) (storage.ChannelRow, error) {
	var c storage.ChannelRow
	err := row.Scan(&c.Name, &c.Description, &c.CreatedAt, &c.CreatedBy, &c.Subscribers)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, storage.ErrNotFound
	}
	if c.Subscribers == nil {
		c.Subscribers = []string{}
	}
	return c, err
}

func (s messageStore) GetChannel(ctx context.Context, name string) (storage.ChannelRow, error) {
	if unstorable(name) {
		return storage.ChannelRow{}, storage.ErrNotFound
	}
	c, err := scanChannel(s.d.pool.QueryRow(ctx, `SELECT `+channelColumns+` FROM agentcom_message_channels WHERE name = $1`, name))
	if errors.Is(err, storage.ErrNotFound) {
		return c, err
	}
	if err != nil {
		return c, fmt.Errorf("get channel: %w", err)
	}
	return c, nil
}

func (s messageStore) ListChannels(ctx context.Context) ([]storage.ChannelRow, error) {
	rows, err := s.d.pool.Query(ctx, `SELECT `+channelColumns+` FROM agentcom_message_channels ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.ChannelRow, error) { return scanChannel(r) })
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	if out == nil {
		out = []storage.ChannelRow{}
	}
	return out, nil
}

// changeChannel locks the channel's row, applies change and writes the
// subscribers back when change reports a change.
func (s messageStore) changeChannel(ctx context.Context, name string, change func(*storage.ChannelRow) (bool, error)) (storage.ChannelRow, error) {
	var c storage.ChannelRow
	if unstorable(name) {
		return c, storage.ErrNotFound
	}
	err := s.msgTx(ctx, func(tx pgx.Tx) error {
		var err error
		c, err = scanChannel(tx.QueryRow(ctx, `SELECT `+channelColumns+` FROM agentcom_message_channels WHERE name = $1 FOR UPDATE`, name))
		if err != nil {
			return err
		}
		changed, err := change(&c)
		if err != nil || !changed {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE agentcom_message_channels SET subscribers = $2 WHERE name = $1`, name, c.Subscribers)
		return err
	})
	return c, err
}

func (s messageStore) Subscribe(ctx context.Context, channel, agent string, maxSubscribers int) (storage.ChannelRow, bool, error) {
	if err := storage.CheckName(agent); err != nil {
		return storage.ChannelRow{}, false, fmt.Errorf("subscribe: %w", err)
	}
	already := false
	c, err := s.changeChannel(ctx, channel, func(c *storage.ChannelRow) (bool, error) {
		already = slices.Contains(c.Subscribers, agent)
		if already {
			return false, nil
		}
		if len(c.Subscribers) >= maxSubscribers {
			return false, fmt.Errorf("%w: at most %d subscribers per channel", storage.ErrChannelLimit, maxSubscribers)
		}
		c.Subscribers = append([]string{agent}, c.Subscribers...)
		return true, nil
	})
	if err != nil {
		return storage.ChannelRow{}, false, fmt.Errorf("subscribe %s: %w", channel, err)
	}
	return c, already, nil
}

func (s messageStore) Unsubscribe(ctx context.Context, channel, agent string) (storage.ChannelRow, error) {
	c, err := s.changeChannel(ctx, channel, func(c *storage.ChannelRow) (bool, error) {
		if !slices.Contains(c.Subscribers, agent) {
			return false, nil
		}
		c.Subscribers = slices.DeleteFunc(c.Subscribers, func(s string) bool { return s == agent })
		return true, nil
	})
	if err != nil {
		return storage.ChannelRow{}, fmt.Errorf("unsubscribe %s: %w", channel, err)
	}
	return c, nil
}

func (s messageStore) ChannelHistory(ctx context.Context, channel string, after uint64, limit int) ([]storage.Entry, error) {
	if limit <= 0 || after >= math.MaxInt64 || storage.CheckName(channel) != nil {
		return []storage.Entry{}, nil // no such channel can exist
	}
	out, err := collectEntries(s.d.pool.Query(ctx, `SELECT seq, stored_at, body FROM (
		SELECT seq, stored_at, body FROM agentcom_channel_history WHERE channel = $1 AND seq > $2
		ORDER BY seq DESC LIMIT $3) r ORDER BY seq`, channel, int64(after), limit))
	if err != nil {
		return nil, fmt.Errorf("channel history %s: %w", channel, err)
	}
	return out, nil
}

func (s messageStore) ThreadMessage(ctx context.Context, id string) ([]byte, error) {
	if unstorable(id) {
		return nil, storage.ErrNotFound
	}
	var body []byte
	err := s.d.pool.QueryRow(ctx, `SELECT body FROM agentcom_thread_messages WHERE id = $1`, id).Scan(&body)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("thread message %.40q: %w", id, err)
	}
	return body, nil
}

func (s messageStore) ThreadChildren(ctx context.Context, id string) ([]string, error) {
	if unstorable(id) {
		return []string{}, nil
	}
	ids, err := collectIDs(s.d.pool.Query(ctx,
		`SELECT id FROM agentcom_thread_messages WHERE parent = $1 AND id <> parent ORDER BY arrival`, id))
	if err != nil {
		return nil, fmt.Errorf("thread replies %.40q: %w", id, err)
	}
	return ids, nil
}

func (s messageStore) ForgetThread(ctx context.Context, ids []string) error {
	ids = slices.DeleteFunc(slices.Clone(ids), unstorable)
	if len(ids) == 0 {
		return nil
	}
	if _, err := s.d.pool.Exec(ctx, `DELETE FROM agentcom_thread_messages WHERE id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("forget threads: %w", err)
	}
	return nil
}
