// Package cluster lets several hubs on one PostgreSQL database act as one
// hub: a cross-hub Bus (in-process, PostgreSQL LISTEN/NOTIFY, or NATS), an
// Elector that picks the one hub that leads (owns the task queue, the
// scheduler, the timers and the maintenance) and Members, the hubs that
// are alive and where they answer.
package cluster

import (
	"context"
	"errors"
)

// Bus carries messages between the hubs of a cluster.
//
// Delivery is at most once: a message published while a hub is
// disconnected from the bus is lost for it. Messages one Bus publishes on
// one subject arrive at every subscriber in publish order. A payload of
// any size up to MaxPayload is carried (an implementation whose transport
// has a smaller limit stores the payload and sends its id).
type Bus interface {
	// Publish sends payload to every subscriber of subject on every hub,
	// this one included.
	Publish(ctx context.Context, subject string, payload []byte) error
	// Subscribe calls fn for each message on subject, one at a time and
	// in order, until unsubscribe is called or the bus is closed. fn must
	// not block for long: it holds up the subject's later messages.
	Subscribe(subject string, fn func(payload []byte)) (unsubscribe func(), err error)
	// Close stops every subscription and releases the transport.
	Close() error
}

// MaxPayload bounds one bus message (a report is at most 16 MiB plus its
// envelope).
const MaxPayload = 17 << 20

// ErrPayloadTooLarge is returned by Publish for a payload over MaxPayload.
var ErrPayloadTooLarge = errors.New("cluster: bus payload too large")

// Leader names the hub that leads, and the leadership term it holds.
// Epoch grows with every change of leader; work fenced by an epoch is
// refused once a later epoch exists.
type Leader struct {
	HubID string
	// URL is where the leader answers HTTP (its advertised address), for
	// followers that forward requests to it.
	URL   string
	Epoch int64
}

// Elector elects one leader among the hubs sharing a database.
type Elector interface {
	// Start joins the election and returns once this hub knows the
	// current leader (possibly itself). Campaigning goes on until Stop.
	Start(ctx context.Context) error
	// Stop leaves the election (stepping down when leading) and waits for
	// its goroutines.
	Stop()
	// Leader is the current leader as this hub last saw it.
	Leader() Leader
	// Changes delivers every change of leader, in order. When this hub
	// loses the lead (its database session is gone), the change arrives
	// before anything else may assume it still leads.
	Changes() <-chan Leader
	// Self is this hub's id.
	Self() string
}
