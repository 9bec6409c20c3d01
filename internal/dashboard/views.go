package dashboard

import (
	"context"

	"net/http"
	"sort"

	"github.com/agentcom/agentcom/internal/alerts"
	"github.com/agentcom/agentcom/internal/api"
	"github.com/agentcom/agentcom/internal/messaging"
)

// AlertSource lists the alerter's alerts.
type AlertSource interface {
	Active() []alerts.Alert
	History() []alerts.Alert
}

// MessageSource is what the messages view reads.
type MessageSource interface {
	RecentMessages(limit int) ([]messaging.WithSeq, error)
	// Channels returns the first limit channels by name and how many
	// there are.
	Channels(limit int) ([]messaging.ChannelSummary, int)
	Channel(name string) (messaging.Channel, error)
	ChannelHistory(name string, limit int) ([]messaging.ChannelEntry, error)
	MailboxDepths() (map[string]int, error)
}

// Bounds of the messages view.
const (
	recentMessages     = 100
	viewChannels       = 100
	viewChannelHistory = 20
	viewMailboxes      = 500
)

// MessagesView is GET /api/dashboard/messages.
type MessagesView struct {
	Recent    []messaging.WithSeq `json:"recent"` // oldest first
	Channels  []ChannelView       `json:"channels"`
	Mailboxes []MailboxDepth      `json:"mailboxes"`
	// ChannelsTotal counts every channel; Channels holds the first
	// viewChannels by name.
	ChannelsTotal int `json:"channels_total"`
	// MailboxesTotal counts every mailbox; Mailboxes holds the
	// viewMailboxes deepest.
	MailboxesTotal int `json:"mailboxes_total"`
}

// ChannelView is one channel with its members and newest messages.
type ChannelView struct {
	Name        string                   `json:"name"`
	Description string                   `json:"description"`
	CreatedAt   int64                    `json:"created_at"`
	CreatedBy   string                   `json:"created_by"`
	Members     []string                 `json:"members"`
	History     []messaging.ChannelEntry `json:"history"` // oldest first
}

// MailboxDepth is how many messages wait for one agent.
type MailboxDepth struct {
	AgentID   string `json:"agent_id"`
	Depth     int    `json:"depth"`
	Connected bool   `json:"connected"`
}

// ServiceMessages adapts the messaging service to MessageSource.
type ServiceMessages struct{ S *messaging.Service }

// RecentMessages implements MessageSource.
func (m ServiceMessages) RecentMessages(limit int) ([]messaging.WithSeq, error) {
	return m.S.History.Recent(context.Background(), limit)
}

// Channels implements MessageSource.
func (m ServiceMessages) Channels(limit int) ([]messaging.ChannelSummary, int) {
	list, total, _ := m.S.Channels.List("", limit)
	return list, total
}

// Channel implements MessageSource.
func (m ServiceMessages) Channel(name string) (messaging.Channel, error) {
	return m.S.Channels.Get(name)
}

// ChannelHistory implements MessageSource.
func (m ServiceMessages) ChannelHistory(name string, limit int) ([]messaging.ChannelEntry, error) {
	return m.S.Channels.History(name, limit, 0)
}

// MailboxDepths implements MessageSource.
func (m ServiceMessages) MailboxDepths() (map[string]int, error) {
	return m.S.Mailbox.Depths(context.Background())
}

func (d *Dashboard) messages(*api.Request) api.Response {
	src := d.messagesSrc
	if src == nil {
		return api.Err(http.StatusServiceUnavailable, "messages_unavailable")
	}
	recent, err := src.RecentMessages(recentMessages)
	if err != nil {
		d.log.Error("dashboard messages", "event", "messages_view_failed", "err", err)
		return api.Err(http.StatusInternalServerError, "storage_error")
	}
	v := MessagesView{Recent: recent, Channels: []ChannelView{}, Mailboxes: []MailboxDepth{}}
	list, total := src.Channels(viewChannels)
	v.ChannelsTotal = total
	for _, cs := range list {
		ch, err := src.Channel(cs.Name)
		if err != nil {
			continue // removed meanwhile
		}
		hist, err := src.ChannelHistory(cs.Name, viewChannelHistory)
		if err != nil {
			d.log.Error("dashboard channel history", "event", "messages_view_failed", "err", err)
			return api.Err(http.StatusInternalServerError, "storage_error")
		}
		v.Channels = append(v.Channels, ChannelView{Name: ch.Name, Description: ch.Description, CreatedAt: ch.CreatedAt,
			CreatedBy: ch.CreatedBy, Members: nonNil(ch.Subscribers), History: nonNil(hist)})
	}
	depths, err := src.MailboxDepths()
	if err != nil {
		d.log.Error("dashboard mailboxes", "event", "messages_view_failed", "err", err)
		return api.Err(http.StatusInternalServerError, "storage_error")
	}
	connected := map[string]bool{}
	for _, p := range d.agg.pres.List() {
		connected[p.AgentID] = true
		if _, ok := depths[p.AgentID]; !ok {
			depths[p.AgentID] = 0
		}
	}
	for id, n := range depths {
		v.Mailboxes = append(v.Mailboxes, MailboxDepth{AgentID: id, Depth: n, Connected: connected[id]})
	}
	sort.Slice(v.Mailboxes, func(i, j int) bool {
		if v.Mailboxes[i].Depth != v.Mailboxes[j].Depth {
			return v.Mailboxes[i].Depth > v.Mailboxes[j].Depth
		}
		return v.Mailboxes[i].AgentID < v.Mailboxes[j].AgentID
	})
	v.MailboxesTotal = len(v.Mailboxes)
	v.Mailboxes = v.Mailboxes[:min(len(v.Mailboxes), viewMailboxes)]
	return api.JSON(http.StatusOK, v)
}

// series answers GET /api/dashboard/series?minutes=N&step=S: the chart
// history (default the last hour by minute; at most 7 days).
func (d *Dashboard) series(r *api.Request) api.Response {
	minutes, bad := api.QueryInt(r, "minutes", SeriesMinutes)
	if bad != nil {
		return *bad
	}
	step, bad := api.QueryInt(r, "step", 1)
	if bad != nil {
		return *bad
	}
	return api.JSON(http.StatusOK, d.agg.History(int(min(max(minutes, 1), HistoryMinutes)), int(min(max(step, 1), HistoryMinutes))))
}

// alertsView is the snapshot's alerts panel: the alerter's active alerts
// (with acknowledgements) and the recent past ones.
type alertsView struct {
	Active []alerts.Alert `json:"active"`
	Recent []alerts.Alert `json:"recent"`
}

func (a *Aggregator) alertsNow() alertsView {
	v := alertsView{Active: []alerts.Alert{}, Recent: []alerts.Alert{}}
	if a.alertSrc == nil {
		return v
	}
	v.Active = nonNil(a.alertSrc.Active())
	h := a.alertSrc.History()
	v.Recent = nonNil(h[:min(len(h), AlertsCap)])
	return v
}
