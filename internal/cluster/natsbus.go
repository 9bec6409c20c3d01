package cluster

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSBusConfig tunes the NATS bus. The zero value is usable.
type NATSBusConfig struct {
	BusConfig
	// Name is the connection's name as the NATS server shows it (the
	// hub id, say).
	Name string
	// ConnectTimeout bounds the first connection; 0 means 5 s.
	ConnectTimeout time.Duration
	// Namespace, when set, prefixes every subject on the server
	// (Namespace.subject), so that clusters sharing a NATS server keep
	// apart: give every hub of a cluster the same one, ClusterID's.
	// It follows the rules of a subject.
	Namespace string
}

// NATS frames. A message that fits the server's max_payload travels whole
// after one byte; a larger one is cut into chunks, each carrying the
// publishing bus's id, the message's sequence number, the chunk's index,
// the chunk count and the message length. One bus publishes the chunks of
// a message back to back on one connection, and NATS keeps one
// connection's messages in order, so a receiver assembles each sender's
// chunks in arrival order; chunks of different hubs may interleave.
//
// Chunking (rather than the JetStream object store) keeps the bus needing
// nothing from the server but core NATS, and a message's parts cannot
// outlive it.
const (
	frameWhole   = 'w'
	frameChunk   = 'c'
	chunkHeader  = 1 + 8 + 8 + 4 + 4 + 4
	maxAssembly  = 8 // partial messages kept per subject (one per publishing hub in practice)
	flushTimeout = 10 * time.Second
)

// NATSBus is the Bus over a NATS server, for large fan-out. Subjects are
// used as NATS subjects, after the namespace when there is one.
type NATSBus struct {
	nc     *nats.Conn
	ns     string // "" or the namespace and a dot
	d      *dispatcher
	sender [8]byte

	pubMu sync.Mutex
	seq   uint64

	subMu sync.Mutex
	subs  map[string]*nats.Subscription
}

var _ Bus = (*NATSBus)(nil)

// NewNATSBus connects to the NATS server at url. The connection
// reconnects by itself for as long as the bus is open.
func NewNATSBus(url string, cfg NATSBusConfig) (*NATSBus, error) {
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	b := &NATSBus{subs: map[string]*nats.Subscription{}}
	if cfg.Namespace != "" {
		if err := checkSubject(cfg.Namespace); err != nil || len(cfg.Namespace) > 100 {
			return nil, fmt.Errorf("nats bus: namespace %q: want up to 100 bytes of letters, digits, '-', '_' and '.'", cfg.Namespace)
		}
		b.ns = cfg.Namespace + "."
	}
	if _, err := rand.Read(b.sender[:]); err != nil {
		return nil, fmt.Errorf("nats bus: %w", err)
	}
	log := cfg.logger()
	b.d = newDispatcher(cfg.BusConfig, b.watch, b.unwatch)
	opts := []nats.Option{
		nats.Timeout(cfg.ConnectTimeout),
		nats.MaxReconnects(-1),
		nats.NoCallbacksAfterClientClose(),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats bus: disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats bus: reconnected", "server", redactURL(nc.ConnectedUrl()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subject := ""
			if s != nil {
				subject = s.Subject
			}
			log.Warn("nats bus: error", "subject", subject, "err", err)
		}),
	}
	if cfg.Name != "" {
		opts = append(opts, nats.Name(cfg.Name))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		// nats.go's errors do not carry the URL, and the URL is only
		// shown redacted.
		return nil, fmt.Errorf("nats bus %s: %w", redactURL(url), err)
	}
	b.nc = nc
	return b, nil
}

// Publish implements Bus.
func (b *NATSBus) Publish(ctx context.Context, subject string, payload []byte) error {
	if err := checkPublish(subject, payload); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	if b.d.isClosed() {
		return ErrBusClosed
	}
	limit := int(b.nc.MaxPayload())
	if 1+len(payload) <= limit {
		frame := make([]byte, 1+len(payload))
		frame[0] = frameWhole
		copy(frame[1:], payload)
		if err := b.nc.Publish(b.ns+subject, frame); err != nil {
			return fmt.Errorf("nats bus: publish %s: %w", subject, err)
		}
		return nil
	}
	size := limit - chunkHeader
	if size < 1024 {
		return fmt.Errorf("%w: the NATS server's max_payload (%d bytes) is too small to carry chunks", ErrPayloadTooLarge, limit)
	}
	b.seq++
	count := (len(payload) + size - 1) / size
	for i := range count {
		part := payload[i*size : min((i+1)*size, len(payload))]
		frame := make([]byte, chunkHeader+len(part))
		frame[0] = frameChunk
		copy(frame[1:9], b.sender[:])
		binary.BigEndian.PutUint64(frame[9:17], b.seq)
		binary.BigEndian.PutUint32(frame[17:21], uint32(i))
		binary.BigEndian.PutUint32(frame[21:25], uint32(count))
		binary.BigEndian.PutUint32(frame[25:29], uint32(len(payload)))
		copy(frame[chunkHeader:], part)
		if err := b.nc.Publish(b.ns+subject, frame); err != nil {
			return fmt.Errorf("nats bus: publish %s (part %d of %d): %w", subject, i+1, count, err)
		}
		if err := ctx.Err(); err != nil && i < count-1 {
			// The receivers drop the partial message.
			return err
		}
	}
	return nil
}

// Subscribe implements Bus. It returns once the server has the
// subscription (messages published after it returns arrive).
func (b *NATSBus) Subscribe(subject string, fn func(payload []byte)) (func(), error) {
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	return b.d.subscribe(subject, fn)
}

// Close implements Bus.
func (b *NATSBus) Close() error {
	if !b.d.close() {
		return nil
	}
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	// Flush what was published before closing, as a NATS publish is
	// buffered; an error here only means the server is gone.
	_ = b.nc.FlushTimeout(flushTimeout)
	b.nc.Close()
	return nil
}

func (b *NATSBus) watch(subject string) error {
	a := &assembler{}
	sub, err := b.nc.Subscribe(b.ns+subject, func(m *nats.Msg) {
		if p, ok := a.add(m.Data); ok {
			b.d.deliver(subject, message{payload: p, size: len(p)})
		}
	})
	if err != nil {
		return err
	}
	// The dispatcher bounds what waits for the subscribers; NATS's own
	// pending limits must not be the smaller.
	if err := sub.SetPendingLimits(-1, 8*MaxPayload); err != nil {
		_ = sub.Unsubscribe()
		return err
	}
	if err := b.nc.FlushTimeout(flushTimeout); err != nil {
		_ = sub.Unsubscribe()
		return err
	}
	b.subMu.Lock()
	b.subs[subject] = sub
	b.subMu.Unlock()
	return nil
}

func (b *NATSBus) unwatch(subject string) {
	b.subMu.Lock()
	sub := b.subs[subject]
	delete(b.subs, subject)
	b.subMu.Unlock()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
}

// assembler puts chunked messages of one subject back together. NATS
// calls a subscription's handler one message at a time, so it needs no
// lock. Everything it reads is bounded: a message's length by MaxPayload,
// the partial messages by maxAssembly.
type assembler struct {
	partial []*partialMsg
}

type partialMsg struct {
	sender [8]byte
	seq    uint64
	next   uint32
	count  uint32
	buf    []byte
}

// add takes one frame and returns a whole message when it completes one.
func (a *assembler) add(frame []byte) ([]byte, bool) {
	if len(frame) == 0 {
		return nil, false
	}
	switch frame[0] {
	case frameWhole:
		return frame[1:], true
	case frameChunk:
	default:
		return nil, false
	}
	if len(frame) < chunkHeader {
		return nil, false
	}
	var sender [8]byte
	copy(sender[:], frame[1:9])
	seq := binary.BigEndian.Uint64(frame[9:17])
	index := binary.BigEndian.Uint32(frame[17:21])
	count := binary.BigEndian.Uint32(frame[21:25])
	total := binary.BigEndian.Uint32(frame[25:29])
	data := frame[chunkHeader:]
	if count == 0 || index >= count || int64(total) > MaxPayload {
		return nil, false
	}
	// A sender has at most one message in flight per subject: whatever
	// else of its was pending lost its remaining chunks.
	var p *partialMsg
	kept := a.partial[:0]
	for _, o := range a.partial {
		switch {
		case o.sender != sender:
			kept = append(kept, o)
		case o.seq == seq:
			p = o
			kept = append(kept, o)
		}
	}
	a.partial = kept
	if p == nil {
		if index != 0 {
			return nil, false // joined in the middle of a message
		}
		if len(a.partial) >= maxAssembly {
			a.partial = append(a.partial[:0], a.partial[1:]...)
		}
		p = &partialMsg{sender: sender, seq: seq, count: count, buf: make([]byte, 0, total)}
		a.partial = append(a.partial, p)
	}
	if index != p.next || count != p.count || len(p.buf)+len(data) > cap(p.buf) {
		a.drop(p)
		return nil, false
	}
	p.buf = append(p.buf, data...)
	p.next++
	if p.next < p.count {
		return nil, false
	}
	a.drop(p)
	if len(p.buf) != cap(p.buf) {
		return nil, false
	}
	return p.buf, true
}

func (a *assembler) drop(p *partialMsg) {
	for i, o := range a.partial {
		if o == p {
			a.partial = append(a.partial[:i], a.partial[i+1:]...)
			return
		}
	}
}

// Dropped is how many messages this hub dropped because a subscriber
// did not keep up (see BusConfig.QueueLimit).
func (b *NATSBus) Dropped() uint64 { return b.d.dropped.Load() }
