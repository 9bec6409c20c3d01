package webpush

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

const (
	// DefaultIcon is the notification icon the hub's payloads name.
	DefaultIcon = "/favicon.ico"
	// DefaultConcurrency bounds the pushes a Broadcast has in flight.
	DefaultConcurrency = 8

	// maxReportedErrors bounds the per-subscription errors Broadcast joins
	// into its error, so a dead network does not produce a megabyte of log.
	maxReportedErrors = 5
)

// Pusher delivers one payload to one subscription; *Sender is the real
// one. Send must wrap ErrGone for a subscription that no longer exists.
type Pusher interface {
	Send(ctx context.Context, sub Subscription, payload []byte) error
}

// Notification is the JSON payload the hub's service worker (/sw.js)
// turns into a system notification.
type Notification struct {
	Title string `json:"title"`
	Body  string `json:"body"`
	Icon  string `json:"icon"`
}

// NotifierOptions configure a Notifier. The zero value is usable.
type NotifierOptions struct {
	// Concurrency bounds the pushes in flight at once; 0 means
	// DefaultConcurrency.
	Concurrency int
}

// Notifier fans payloads out to every stored subscription. It is safe for
// concurrent use.
type Notifier struct {
	pusher      Pusher
	subs        *Subscriptions
	concurrency int
}

// BroadcastResult counts the outcomes of one Broadcast.
type BroadcastResult struct {
	// Sent counts subscriptions whose push service accepted the message.
	Sent int
	// Dropped counts subscriptions removed from the store: their push
	// service answered 404/410, or their record was unreadable.
	Dropped int
	// Failed counts subscriptions that were kept but not reached: other
	// statuses, transport errors, failed removals, and those not tried
	// because the context ended.
	Failed int
}

// NewNotifier returns a Notifier that pushes with p to the subscriptions
// in subs.
func NewNotifier(p Pusher, subs *Subscriptions, opts NotifierOptions) *Notifier {
	c := opts.Concurrency
	if c <= 0 {
		c = DefaultConcurrency
	}
	return &Notifier{pusher: p, subs: subs, concurrency: c}
}

// NewNotification returns a notification with the hub's default icon.
func NewNotification(title, body string) Notification {
	return Notification{Title: title, Body: body, Icon: DefaultIcon}
}

// Notify broadcasts note as JSON; an empty Icon becomes DefaultIcon.
func (n *Notifier) Notify(ctx context.Context, note Notification) (BroadcastResult, error) {
	if note.Icon == "" {
		note.Icon = DefaultIcon
	}
	payload, err := json.Marshal(note)
	if err != nil {
		return BroadcastResult{}, fmt.Errorf("push notification: %w", err)
	}
	return n.Broadcast(ctx, payload)
}

// Broadcast sends payload to every stored subscription, at most the
// configured number at a time, and waits for all of them. Subscriptions
// whose push service reports them gone are deleted. The result is valid
// even when the error is not nil; the error joins the first few
// per-subscription failures (or is the storage error that prevented the
// broadcast, or the context's error). It is nil when every subscription
// was reached or dropped as gone; unreadable records, dropped too, are
// reported in it so that damage to the table is not silent.
func (n *Notifier) Broadcast(ctx context.Context, payload []byte) (BroadcastResult, error) {
	var res BroadcastResult
	if len(payload) > MaxPayloadSize {
		return res, fmt.Errorf("push broadcast: %w: %d bytes, limit %d", ErrPayloadTooLarge, len(payload), MaxPayloadSize)
	}
	sctx, cancel := storeContext(ctx)
	defer cancel()
	subs, invalid, err := n.subs.list(sctx)
	if err != nil {
		return res, fmt.Errorf("push broadcast: %w", err)
	}

	var errs errorList
	for _, endpoint := range invalid {
		if err := n.subs.Remove(sctx, endpoint); err != nil {
			res.Failed++
			errs.add(err)
			continue
		}
		res.Dropped++
		errs.add(errors.New("removed an unreadable push subscription record"))
	}

	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, n.concurrency)
	)
	tried := 0
launch:
	for _, sub := range subs {
		if ctx.Err() != nil {
			break // select below picks at random when both are ready
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break launch
		}
		tried++
		wg.Go(func() {
			defer func() { <-sem }()
			dropped, err := n.deliver(ctx, sub, payload)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				res.Failed++
				errs.add(err)
			case dropped:
				res.Dropped++
			default:
				res.Sent++
			}
		})
	}
	wg.Wait()
	if skipped := len(subs) - tried; skipped > 0 {
		res.Failed += skipped
		errs.add(fmt.Errorf("%d subscriptions not tried: %w", skipped, context.Cause(ctx)))
	}
	if err := errs.err(); err != nil {
		return res, fmt.Errorf("push broadcast: %w", err)
	}
	return res, nil
}

// deliver pushes to one subscription and deletes it when it is gone.
func (n *Notifier) deliver(ctx context.Context, sub Subscription, payload []byte) (dropped bool, err error) {
	err = n.pusher.Send(ctx, sub, payload)
	if !errors.Is(err, ErrGone) {
		return false, err
	}
	// A replaced record (same endpoint, new keys) is left alone; either
	// way this subscription is no longer one we hold.
	sctx, cancel := storeContext(ctx)
	defer cancel()
	if _, err := n.subs.removeIfUnchanged(sctx, sub); err != nil {
		return false, err
	}
	return true, nil
}

// storeTimeout bounds one read or write of the subscription store.
const storeTimeout = 10 * time.Second

// storeContext is the context of the notifier's store operations: they
// run even when the broadcast's context has ended (so a canceled broadcast
// still accounts for every subscription, and a subscription reported gone
// is still dropped), bounded by storeTimeout instead.
func storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
}

// errorList collects errors, keeping the first few and counting the rest.
type errorList struct {
	kept  []error
	extra int
}

func (l *errorList) add(err error) {
	if len(l.kept) < maxReportedErrors {
		l.kept = append(l.kept, err)
		return
	}
	l.extra++
}

func (l *errorList) err() error {
	if l.extra > 0 {
		return errors.Join(append(l.kept, fmt.Errorf("and %d more errors", l.extra))...)
	}
	return errors.Join(l.kept...)
}
