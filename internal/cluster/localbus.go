package cluster

import "context"

// LocalBus is the in-process Bus of a hub that runs alone (and of tests):
// Publish hands the message to this process's subscribers only.
type LocalBus struct {
	d *dispatcher
}

var _ Bus = (*LocalBus)(nil)

// NewLocalBus returns an in-process bus with the default configuration.
func NewLocalBus() *LocalBus { return NewLocalBusConfig(BusConfig{}) }

// NewLocalBusConfig returns an in-process bus configured by cfg.
func NewLocalBusConfig(cfg BusConfig) *LocalBus {
	nop := func(string) error { return nil }
	return &LocalBus{d: newDispatcher(cfg, nop, func(string) {})}
}

// Publish implements Bus. It does not wait for the subscribers: they get
// the message on their subject's goroutine, so a handler may publish.
func (b *LocalBus) Publish(ctx context.Context, subject string, payload []byte) error {
	if err := checkPublish(subject, payload); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.d.isClosed() {
		return ErrBusClosed
	}
	// The caller may reuse its buffer once Publish returns.
	p := append([]byte(nil), payload...)
	b.d.deliver(subject, message{payload: p, size: len(p)})
	return nil
}

// Subscribe implements Bus.
func (b *LocalBus) Subscribe(subject string, fn func(payload []byte)) (func(), error) {
	if err := checkSubject(subject); err != nil {
		return nil, err
	}
	return b.d.subscribe(subject, fn)
}

// Close implements Bus.
func (b *LocalBus) Close() error {
	b.d.close()
	return nil
}

// Dropped is how many messages this hub dropped because a subscriber
// did not keep up (see BusConfig.QueueLimit).
func (b *LocalBus) Dropped() uint64 { return b.d.dropped.Load() }
