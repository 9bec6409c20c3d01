package messaging

import (
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
)

// Errors callers test for.
var (
	ErrChannelNotFound = errors.New("channel_not_found")
	ErrChannelExists   = errors.New("channel_exists")
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

// NewChannels opens the channel tables.
func NewChannels(channels, history, meta *store.Table) (*Channels, error) {
	c := &Channels{channels: channels, history: history, meta: meta, now: time.Now}
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

// Create makes a channel; the name is normalized.
func (c *Channels) Create(name, description, by string) (Channel, error) {
	n := NormalizeChannel(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byName[n]; ok {
		return Channel{}, ErrChannelExists
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

// List returns every channel, sorted by name.
func (c *Channels) List() []ChannelSummary {
	c.mu.Lock()
	out := make([]ChannelSummary, 0, len(c.byName))
	for _, ch := range c.byName {
		out = append(out, ChannelSummary{Name: ch.Name, Description: ch.Description,
			SubscriberCount: len(ch.Subscribers), CreatedAt: ch.CreatedAt})
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
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
// returns the entry's per-channel sequence number.
func (c *Channels) AppendHistory(channel string, m Message) (uint64, error) {
	c.histLock.Lock()
	defer c.histLock.Unlock()
	ctr, err := c.counter(channel)
	if err != nil {
		return 0, err
	}
	n, err := ctr.Next()
	if err != nil {
		return 0, err
	}
	v, err := json.Marshal(ChannelEntry{Seq: n, Message: m, StoredAt: c.now().UnixMilli()})
	if err != nil {
		return 0, err
	}
	prefix := channelPrefix(channel)
	err = c.history.Update(func(tx *store.Tx) error { return appendCapped(tx, prefix, n, v, ChannelHistoryCap) })
	if err != nil {
		return 0, fmt.Errorf("channel history %s: %w", channel, err)
	}
	return n, nil
}

// History returns the newest limit entries with seq > since, ascending.
// An unknown channel has an empty history.
func (c *Channels) History(name string, limit int, since uint64) ([]ChannelEntry, error) {
	out := []ChannelEntry{}
	if limit <= 0 {
		return out, nil
	}
	prefix := channelPrefix(NormalizeChannel(name))
	err := c.history.View(func(tx *store.Tx) error {
		return tx.Scan(prefix, func(k, v []byte) error {
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
	var floor uint64
	err := c.history.View(func(tx *store.Tx) error {
		if k, _ := tx.Last(channelPrefix(channel)); k != nil {
			floor = seq.Decode(k)
		}
		return nil
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

func channelPrefix(name string) []byte { return append([]byte(name), 0) }

func cloneChannel(ch *Channel) Channel {
	cp := *ch
	cp.Subscribers = slices.Clone(ch.Subscribers)
	return cp
}
