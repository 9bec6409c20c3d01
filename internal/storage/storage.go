// Package storage is the boundary between the hub's domain packages and
// the databases that keep their state, in the style of River's
// riverdriver: a Driver hands out one store per domain, and every store
// method is a domain-level operation that is atomic on its own (it commits
// everything it writes, or nothing) and takes the caller's context.
//
// Three kinds of types meet at this boundary and stay separate:
//   - rows (this package): what a driver stores and returns, with the
//     columns a driver may index and the rest as an opaque encoded body;
//   - domain types (tasks.Task, messaging.Message, ...): what the domain
//     packages reason about; they convert to and from rows;
//   - wire types (package protocol): what crosses the network.
//
// Domain packages depend on these interfaces only, and they write to
// storage before they change their memory, so a failed write leaves both
// as they were.
//
// Two drivers implement the interfaces: boltdriver (embedded, one bbolt
// file per table, the zero-config default) and pgdriver (PostgreSQL, for
// one hub or a cluster of hubs). The conformance suite in storagetest runs
// the same tests against both.
package storage

import "errors"

// Driver is a storage backend. Its stores are safe for concurrent use.
type Driver interface {
	// Name is the driver's short name: "bolt" or "postgres".
	Name() string

	Tasks() TaskStore
	Messages() MessageStore
	Tokens() TokenStore
	Settings() SettingsStore
	PushSubscriptions() PushSubscriptionStore
	Series() SeriesStore

	// Close releases the driver's resources. Stores must not be used
	// after it.
	Close() error
}

// ErrNotFound is returned by reads of a single row that does not exist.
var ErrNotFound = errors.New("storage: not found")

// ErrClosed is returned by any operation on a closed driver.
var ErrClosed = errors.New("storage: driver closed")
