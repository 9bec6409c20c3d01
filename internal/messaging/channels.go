package messaging

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/agentcom/agentcom/internal/seq"
	"github.com/agentcom/agentcom/internal/store"
)

// Channel limits.
const (
	ChannelHistoryCap          = 200
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

// Channels holds channel records (cached in memory) and their history.
type Channels struct {
	channels *store.Table
	history  *store.Table
	meta     *store.Table
	now      func() time.Time
	limits   Limits

	mu       sync.Mutex // guards byName and seqs, serializes writes
	byName   map[string]*Channel
	seqs     map[string]*seq.Counter
	histLock sync.Mutex // serializes history append+trim
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
type Limits struct {
	MaxChannels           int
	MaxChannelSubscribers int
	MaxTrackedAgents      int
}

// WithDefaults fills zero fields.
func (l Limits) WithDefaults() Limits {
	l.MaxChannels = cmp.Or(l.MaxChannels, DefaultMaxChannels)
	l.MaxChannelSubscribers = cmp.Or(l.MaxChannelSubscribers, DefaultMaxChannelSubscribers)
	l.MaxTrackedAgents = cmp.Or(l.MaxTrackedAgents, MaxTrackedAgents)
	return l
}

// NewChannels opens the channel tables.
func NewChannels(channels, history, meta *store.Table, limits Limits) (*Channels, error) {
	c := &Channels{channels: channels, history: history, meta: meta, now: time.Now, limits: limits.WithDefaults()}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload rebuilds the cache from the tables (after a restore).
func (c *Channels) Reload() error {
	m := make(map[string]*Channel)
	err := c.channels.View(func(tx *store.Tx) error {
		return tx.ForEach(func(k, v []byte) error {
			var ch Channel
			if err := json.Unmarshal(v, &ch); err != nil {
				return fmt.Errorf("decode channel %q: %w", k, err)
			}
			if ch.Subscribers == nil {
				ch.Subscribers = []string{}
			}
			m[string(k)] = &ch
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load channels: %w", err)
	}
	c.mu.Lock()
	c.byName = m
	if c.seqs == nil {
		c.seqs = make(map[string]*seq.Counter)
	}
	c.mu.Unlock()
	return nil
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
	if _, ok := c.byName[n]; ok {
		return Channel{}, ErrChannelExists
	}
	if len(c.byName) >= c.limits.MaxChannels {
		return Channel{}, fmt.Errorf("%w: at most %d channels", ErrChannelLimit, c.limits.MaxChannels)
	}
	ch := &Channel{Name: n, Description: description, CreatedAt: c.now().UnixMilli(), CreatedBy: by, Subscribers: []string{}}
	if err := c.save(ch); err != nil {
		return Channel{}, err
	}
	c.byName[n] = ch
	return cloneChannel(ch), nil
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
	ch, ok := c.byName[NormalizeChannel(name)]
	if !ok {
		return false, ErrChannelNotFound
	}
	if slices.Contains(ch.Subscribers, agent) {
		return true, nil
	}
	if len(ch.Subscribers) >= c.limits.MaxChannelSubscribers {
		return false, fmt.Errorf("%w: at most %d subscribers per channel", ErrChannelLimit, c.limits.MaxChannelSubscribers)
	}
	next := cloneChannel(ch)
	next.Subscribers = append([]string{agent}, next.Subscribers...)
	if err := c.save(&next); err != nil {
		return false, err
	}
	c.byName[next.Name] = &next
	return false, nil
}

// Unsubscribe removes agent from the channel (fine if it was not there).
func (c *Channels) Unsubscribe(name, agent string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.byName[NormalizeChannel(name)]
	if !ok {
		return ErrChannelNotFound
	}
	if !slices.Contains(ch.Subscribers, agent) {
		return nil
	}
	next := cloneChannel(ch)
	next.Subscribers = slices.DeleteFunc(next.Subscribers, func(s string) bool { return s == agent })
	if err := c.save(&next); err != nil {
		return err
	}
	c.byName[next.Name] = &next
	return nil
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

// AppendHistory stores m in the channel's history, trims it to the cap, and
// returns the entry's per-channel sequence number and the ids of the
// messages trimmed away.
func (c *Channels) AppendHistory(channel string, m Message) (uint64, []string, error) {
	prefix, err := channelPrefix(channel)
	if err != nil {
		return 0, nil, err
	}
	c.histLock.Lock()
	defer c.histLock.Unlock()
	ctr, err := c.counter(channel)
	if err != nil {
		return 0, nil, err
	}
	n, err := ctr.Next()
	if err != nil {
		return 0, nil, err
	}
	v, err := json.Marshal(ChannelEntry{Seq: n, Message: m, StoredAt: c.now().UnixMilli()})
	if err != nil {
		return 0, nil, err
	}
	var removed [][]byte
	err = c.history.Update(func(tx *store.Tx) error {
		var err error
		removed, err = appendCapped(tx, prefix, n, v, ChannelHistoryCap)
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("channel history %s: %w", channel, err)
	}
	return n, trimmedIDs(removed), nil
}

// trimmedIDs returns the message ids of trimmed history or channel
// records (both carry the message under "message").
func trimmedIDs(values [][]byte) []string {
	ids := make([]string, 0, len(values))
	for _, v := range values {
		var e struct {
			Message struct {
				ID string `json:"id"`
			} `json:"message"`
		}
		if json.Unmarshal(v, &e) == nil && e.Message.ID != "" {
			ids = append(ids, e.Message.ID)
		}
	}
	return ids
}

// History returns the newest limit entries with seq > since, ascending.
// An unknown channel has an empty history.
func (c *Channels) History(name string, limit int, since uint64) ([]ChannelEntry, error) {
	out := []ChannelEntry{}
	if limit <= 0 {
		return out, nil
	}
	prefix, err := channelPrefix(NormalizeChannel(name))
	if err != nil {
		return out, nil // no such channel can exist
	}
	err = c.history.View(func(tx *store.Tx) error {
		return scanOwned(tx, prefix, func(k, v []byte) error {
			if seq.Decode(k) <= since {
				return nil
			}
			var e ChannelEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode channel entry: %w", err)
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("channel history %s: %w", name, err)
	}
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

func (c *Channels) counter(channel string) (*seq.Counter, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ctr, ok := c.seqs[channel]; ok {
		return ctr, nil
	}
	prefix, err := channelPrefix(channel)
	if err != nil {
		return nil, err
	}
	var floor uint64
	err = c.history.View(func(tx *store.Tx) error {
		return scanOwned(tx, prefix, func(k, _ []byte) error {
			floor = max(floor, seq.Decode(k))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	ctr, err := seq.Open(c.meta, "channel:"+channel, floor)
	if err != nil {
		return nil, err
	}
	c.seqs[channel] = ctr
	return ctr, nil
}

// save writes a channel record; the caller holds c.mu.
func (c *Channels) save(ch *Channel) error {
	v, err := json.Marshal(ch)
	if err != nil {
		return err
	}
	if err := c.channels.Update(func(tx *store.Tx) error { return tx.Put([]byte(ch.Name), v) }); err != nil {
		return fmt.Errorf("save channel %s: %w", ch.Name, err)
	}
	return nil
}

func cloneChannel(ch *Channel) Channel {
	cp := *ch
	cp.Subscribers = slices.Clone(ch.Subscribers)
	return cp
}
