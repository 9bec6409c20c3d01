package messaging

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agentcom/agentcom/internal/storage"
)

// Channel limits.
const (
	ChannelHistoryCap          = storage.ChannelHistoryCap
	ChannelHistoryDefaultLimit = 50
	// MaxChannelNameLen is the longest channel name, after normalization.
	MaxChannelNameLen = 64
	// DefaultMaxChannels is how many channels the hub keeps; creating one
	// more is refused with ErrChannelLimit.
	DefaultMaxChannels = 1000
	// DefaultMaxChannelSubscribers is how many agents one channel holds.
	DefaultMaxChannelSubscribers = 1000
	// ChannelsDefaultLimit and ChannelsMaxLimit page channel listings.
	ChannelsDefaultLimit = 1000
	ChannelsMaxLimit     = 1000
)

// Errors callers test for.
var (
	ErrChannelNotFound = errors.New("channel_not_found")
	ErrChannelExists   = errors.New("channel_exists")
	// ErrInvalidChannel is a name that is empty or too long once
	// normalized.
	ErrInvalidChannel = errors.New("invalid_channel_name")
	// ErrChannelLimit is a channel, or a subscriber, over its cap.
	ErrChannelLimit = errors.New("channel_limit_reached")
)

// Channel is one named channel.
type Channel struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	CreatedAt   int64    `json:"created_at"`
	CreatedBy   string   `json:"created_by"`
	Subscribers []string `json:"subscribers"` // newest first
}

// ChannelSummary is a channel as listings show it.
type ChannelSummary struct {
	Name            string `json:"name"`
	Description     string `json:"description"`
	SubscriberCount int    `json:"subscriber_count"`
	CreatedAt       int64  `json:"created_at"`
}

// ChannelEntry is one message in a channel's history.
type ChannelEntry struct {
	Seq      uint64  `json:"seq"`
	Message  Message `json:"message"`
	StoredAt int64   `json:"stored_at"`
}

// Channels holds channel records (cached in memory: every publish reads
// its channel) and their history.
type Channels struct {
	store  storage.MessageStore
	now    func() time.Time
	limits Limits

	mu     sync.Mutex // guards byName, serializes writes
	byName map[string]*Channel
}

// NormalizeChannel strips leading '#', lowercases, and drops every
// character outside [a-z0-9_-]. The result may be empty.
func NormalizeChannel(name string) string {
	name = strings.TrimLeft(name, "#")
	name = strings.ToLower(name)
	return strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' || r == '-' {
			return r
		}
		return -1
	}, name)
}

// Limits bound what messaging keeps in memory and in its tables. Zero
// fields take the defaults.
// Zero fields take the defaults (WithDefaults, applied by NewChannels).
type Limits struct {
	MaxChannels           int // channels in total (zero: DefaultMaxChannels)
	MaxChannelSubscribers int // subscribers per channel (zero: DefaultMaxChannelSubscribers)
	MaxTrackedAgents      int // agents the analytics track (zero: MaxTrackedAgents)
}

// WithDefaults fills zero fields: the one place the defaults apply.
func (l Limits) WithDefaults() Limits {
	l.MaxChannels = cmp.Or(l.MaxChannels, DefaultMaxChannels)
	l.MaxChannelSubscribers = cmp.Or(l.MaxChannelSubscribers, DefaultMaxChannelSubscribers)
	l.MaxTrackedAgents = cmp.Or(l.MaxTrackedAgents, MaxTrackedAgents)
	return l
}

// NewChannels loads the channels kept in ms.
func NewChannels(ms storage.MessageStore, limits Limits) (*Channels, error) {
	c := &Channels{store: ms, now: time.Now, limits: limits.WithDefaults()}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload rebuilds the cache from the store (after a restore).
func (c *Channels) Reload() error {
	rows, err := c.store.ListChannels(context.Background())
	if err != nil {
		return fmt.Errorf("load channels: %w", err)
	}
	m := make(map[string]*Channel, len(rows))
	for _, r := range rows {
		ch := fromChannelRow(r)
		m[ch.Name] = &ch
	}
	c.mu.Lock()
	c.byName = m
	c.mu.Unlock()
	return nil
}

func fromChannelRow(r storage.ChannelRow) Channel {
	ch := Channel(r)
	if ch.Subscribers == nil {
		ch.Subscribers = []string{}
	}
	return ch
}

// Create makes a channel; the name is normalized and must then be a valid
// channel name. At most MaxChannels exist.
func (c *Channels) Create(name, description, by string) (Channel, error) {
	n := NormalizeChannel(name)
	if err := checkChannelName(n); err != nil {
		return Channel{}, err
	}
	if len(n) > MaxChannelNameLen {
		return Channel{}, fmt.Errorf("%w: %q is longer than %d characters", ErrInvalidChannel, n, MaxChannelNameLen)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := Channel{Name: n, Description: description, CreatedAt: c.now().UnixMilli(), CreatedBy: by, Subscribers: []string{}}
	err := c.store.CreateChannel(context.Background(), storage.ChannelRow(ch), c.limits.MaxChannels)
	switch {
	case errors.Is(err, storage.ErrChannelExists):
		return Channel{}, ErrChannelExists
	case errors.Is(err, storage.ErrChannelLimit):
		return Channel{}, fmt.Errorf("%w: at most %d channels", ErrChannelLimit, c.limits.MaxChannels)
	case err != nil:
		return Channel{}, err
	}
	c.byName[n] = &ch
	return cloneChannel(&ch), nil
}

// Get returns a channel by (unnormalized) name.
func (c *Channels) Get(name string) (Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.byName[NormalizeChannel(name)]
	if !ok {
		return Channel{}, ErrChannelNotFound
	}
	return cloneChannel(ch), nil
}

// List returns up to limit channels whose name sorts after the name
// after (all from the start when empty), sorted by name, the total number
// of channels, and whether more follow the page.
func (c *Channels) List(after string, limit int) ([]ChannelSummary, int, bool) {
	c.mu.Lock()
	total := len(c.byName)
	out := make([]ChannelSummary, 0, min(total, max(limit, 0)))
	names := make([]string, 0, total)
	for n := range c.byName {
		if n > after {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names[:min(len(names), max(limit, 0))] {
		ch := c.byName[n]
		out = append(out, ChannelSummary{Name: ch.Name, Description: ch.Description,
			SubscriberCount: len(ch.Subscribers), CreatedAt: ch.CreatedAt})
	}
	c.mu.Unlock()
	return out, total, len(names) > len(out)
}

// Subscribe adds agent to the channel. It reports whether the agent was
// already subscribed.
func (c *Channels) Subscribe(name, agent string) (already bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := NormalizeChannel(name)
	if _, ok := c.byName[n]; !ok {
		return false, ErrChannelNotFound
	}
	row, already, err := c.store.Subscribe(context.Background(), n, agent, c.limits.MaxChannelSubscribers)
	if err != nil {
		return false, c.storeErr(err)
	}
	ch := fromChannelRow(row)
	c.byName[n] = &ch
	return already, nil
}

// Unsubscribe removes agent from the channel (fine if it was not there).
func (c *Channels) Unsubscribe(name, agent string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := NormalizeChannel(name)
	ch, ok := c.byName[n]
	if !ok {
		return ErrChannelNotFound
	}
	if !slices.Contains(ch.Subscribers, agent) {
		return nil
	}
	row, err := c.store.Unsubscribe(context.Background(), n, agent)
	if err != nil {
		return c.storeErr(err)
	}
	next := fromChannelRow(row)
	c.byName[n] = &next
	return nil
}

// storeErr maps the store's channel errors onto the domain's.
func (c *Channels) storeErr(err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return ErrChannelNotFound
	case errors.Is(err, storage.ErrChannelLimit):
		return fmt.Errorf("%w: at most %d subscribers per channel", ErrChannelLimit, c.limits.MaxChannelSubscribers)
	}
	return err
}

// Subscriptions returns the channels agent is subscribed to, sorted.
func (c *Channels) Subscriptions(agent string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []string{}
	for n, ch := range c.byName {
		if slices.Contains(ch.Subscribers, agent) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// publish stores m in the channel's history, with a mailbox copy (cps)
// per subscriber and its thread index entry, in one commit, trims the
// history to its cap, and returns the entry's per-channel sequence number.
func (c *Channels) publish(channel string, m Message, cps []storage.MailboxCopy) (uint64, error) {
	if err := checkChannelName(channel); err != nil {
		return 0, err
	}
	row, err := toRow(m)
	if err != nil {
		return 0, err
	}
	res, err := c.store.PublishChannel(context.Background(), channel, storage.Append{Message: row, Copies: cps, StoredAt: c.now().UnixMilli()})
	if err != nil {
		return 0, err
	}
	return res.Seq, nil
}

// History returns the newest limit entries with seq > since, ascending.
// An unknown channel has an empty history.
func (c *Channels) History(name string, limit int, since uint64) ([]ChannelEntry, error) {
	out := []ChannelEntry{}
	n := NormalizeChannel(name)
	if limit <= 0 || checkChannelName(n) != nil {
		return out, nil // no such channel can exist
	}
	es, err := c.store.ChannelHistory(context.Background(), n, since, limit)
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		var m Message
		if err := json.Unmarshal(e.Body, &m); err != nil {
			return nil, fmt.Errorf("channel history %s: decode entry %d: %w", n, e.Seq, err)
		}
		out = append(out, ChannelEntry{Seq: e.Seq, Message: m, StoredAt: e.StoredAt})
	}
	return out, nil
}

// names returns every channel's name, in no order.
func (c *Channels) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Collect(maps.Keys(c.byName))
}

func cloneChannel(ch *Channel) Channel {
	cp := *ch
	cp.Subscribers = slices.Clone(ch.Subscribers)
	return cp
}
