package cluster

import (
	"context"
	"sync"
	"time"
)

// StaticElector is the Elector of a hub that runs alone: it always leads,
// in epoch 1.
type StaticElector struct {
	self    Leader
	changes chan Leader

	mu      sync.Mutex
	leader  Leader
	started bool
	stopped bool
	// startedAt is when Start ran.
	startedAt time.Time
}

var _ Elector = (*StaticElector)(nil)

// NewStaticElector returns the elector of a single hub.
func NewStaticElector(hubID, url string) *StaticElector {
	return &StaticElector{self: Leader{HubID: hubID, URL: url, Epoch: 1}, changes: make(chan Leader, 2)}
}

// Start implements Elector: the hub leads from now on.
func (e *StaticElector) Start(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started || e.stopped {
		return nil
	}
	e.started, e.startedAt = true, time.Now()
	e.leader = e.self
	e.changes <- e.self
	return nil
}

// Stop implements Elector: the hub steps down (a Leader with an empty
// HubID arrives on Changes) and Changes is closed.
func (e *StaticElector) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	e.stopped = true
	if e.started {
		e.leader = Leader{}
		e.changes <- Leader{}
	}
	close(e.changes)
}

// Leader implements Elector.
func (e *StaticElector) Leader() Leader {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// Changes implements Elector.
func (e *StaticElector) Changes() <-chan Leader { return e.changes }

// Self implements Elector.
func (e *StaticElector) Self() string { return e.self.HubID }

// Hubs lists this one hub while it runs (as PGElector.Hubs lists a
// cluster's).
func (e *StaticElector) Hubs(context.Context) ([]Hub, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started || e.stopped {
		return nil, nil
	}
	return []Hub{{ID: e.self.HubID, URL: e.self.URL, StartedAt: e.startedAt, SeenAt: time.Now()}}, nil
}
