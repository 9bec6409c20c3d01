package dashboard

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/resilience"
	"github.com/agentcom/agentcom/internal/tasks"
	"github.com/agentcom/agentcom/internal/webpush"
)

// Push titles.
const (
	TitleAlert    = "AgentCom Alert"
	TitleCritical = "AgentCom Critical"
)

// PushSender broadcasts one notification to every subscription;
// *webpush.Notifier is the real one.
type PushSender interface {
	Notify(ctx context.Context, note webpush.Notification) (webpush.BroadcastResult, error)
}

// Notifier turns bus events and health transitions into web push
// notifications. It is loud on trouble and silent on success:
//
//   - an agent going offline while holding a task
//   - a task dead-lettered
//   - a backup, compaction or restore drill failure
//   - an automatic restore (success or not), any failed restore
//   - degraded mode
//   - health going from ok to warning or critical
//
// The same alert (same kind and subject) does not notify twice within
// Config.PushCooldown. Sends run on their own goroutine behind a bounded
// queue so a slow push service never holds up the bus.
type Notifier struct {
	cfg    Config
	push   PushSender
	health func() Health
	log    *slog.Logger
	sub    *bus.Sub
	now    func() time.Time
	queue  chan webpush.Notification

	mu         sync.Mutex
	last       map[string]time.Time
	lastHealth string
}

const pushQueue = 64

// NewNotifier subscribes to the bus at once. health is polled every
// Config.HealthPoll.
func NewNotifier(cfg Config, b *bus.Bus, push PushSender, health func() Health, log *slog.Logger) *Notifier {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{cfg: cfg, push: push, health: health, log: log, now: time.Now,
		sub:   b.Subscribe(1024, bus.TopicTasks, bus.TopicStorage),
		queue: make(chan webpush.Notification, pushQueue), last: map[string]time.Time{}, lastHealth: HealthOK}
}

// Run notifies until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { n.sendLoop(ctx) })
	poll := time.NewTicker(n.cfg.HealthPoll)
	defer func() {
		poll.Stop()
		n.sub.Close()
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-n.sub.C:
			if !ok {
				return
			}
			n.Consider(e)
		case <-poll.C:
			n.CheckHealth()
		}
	}
}

// Consider applies the rules and the cooldown to one event.
func (n *Notifier) Consider(e bus.Event) {
	if key, note, ok := Rule(e); ok {
		n.fire(key, note)
	}
}

// CheckHealth notifies when health left ok.
func (n *Notifier) CheckHealth() {
	if n.health == nil {
		return
	}
	h := n.health()
	n.mu.Lock()
	prev := n.lastHealth
	n.lastHealth = h.Status
	n.mu.Unlock()
	if prev != HealthOK || h.Status == HealthOK {
		return
	}
	body := "Health " + h.Status + ": " + strings.Join(h.Conditions, "; ")
	if len(h.Conditions) == 0 {
		body = "Health degraded"
	}
	title := TitleAlert
	if h.Status == HealthCritical {
		title = TitleCritical
	}
	n.fire("health:"+h.Status, webpush.NewNotification(title, clip(body, 300)))
}

// fire queues a notification unless its key fired within the cooldown.
func (n *Notifier) fire(key string, note webpush.Notification) {
	now := n.now()
	n.mu.Lock()
	if at, ok := n.last[key]; ok && now.Sub(at) < n.cfg.PushCooldown {
		n.mu.Unlock()
		return
	}
	n.last[key] = now
	if len(n.last) > 1000 {
		for k, at := range n.last {
			if now.Sub(at) >= n.cfg.PushCooldown {
				delete(n.last, k)
			}
		}
	}
	n.mu.Unlock()
	select {
	case n.queue <- note:
	default:
		n.log.Warn("push queue full, notification dropped", "event", "push_dropped", "key", key)
	}
}

func (n *Notifier) sendLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case note := <-n.queue:
			if n.push == nil {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, time.Minute)
			res, err := n.push.Notify(sctx, note)
			cancel()
			if err != nil {
				n.log.Warn("push notification partly failed", "event", "push_failed",
					"title", note.Title, "sent", res.Sent, "dropped", res.Dropped, "failed", res.Failed, "err", err)
				continue
			}
			n.log.Info("push notification sent", "event", "push_sent",
				"title", note.Title, "sent", res.Sent, "dropped", res.Dropped)
		}
	}
}

// Rule maps an event onto its notification: a cooldown key, the
// notification, and whether the event notifies at all. It is the hub's
// only push rule set; it reads the events' Go fields, so their JSON tags
// can change without silencing a notification.
func Rule(e bus.Event) (string, webpush.Notification, bool) {
	withReason := func(s, reason string) string {
		if reason != "" {
			return s + " -- " + clip(reason, 160)
		}
		return s
	}
	switch d := e.Data.(type) {
	case tasks.EventData:
		switch {
		case d.Type == tasks.EventReclaimed && d.Reason == tasks.ReasonDisconnect && d.AgentID != "":
			return "agent_offline:" + d.AgentID, webpush.NewNotification(TitleAlert,
				"Agent offline: "+d.AgentID+" (task "+d.TaskID+" returned to the queue)"), true
		case d.Type == tasks.EventDeadLetter:
			body := "Task dead-lettered: " + clip(d.Description, 80) + " (" + d.TaskID + ")"
			if d.Reason != "" {
				body += " -- " + d.Reason
			}
			return "dead_letter:" + d.TaskID, webpush.NewNotification(TitleAlert, body), true
		}
	case resilience.BackupFailedEvent:
		tables := strings.Join(failedTables(d.Failures), ", ")
		return "backup_failed:" + tables, webpush.NewNotification(TitleAlert, withReason("Backup failed: "+orAll(tables), d.Reason)), true
	case resilience.CompactionFailedEvent:
		tables := strings.Join(failedTables(d.Failures), ", ")
		return "compaction_failed:" + tables, webpush.NewNotification(TitleAlert, "Compaction failed: "+orAll(tables)), true
	case resilience.DrillFailedEvent:
		tables := strings.Join(failedTables(d.Failures), ", ")
		return "drill_failed:" + tables, webpush.NewNotification(TitleAlert, withReason("Restore drill failed: "+orAll(tables), d.Reason)), true
	case resilience.RecoveryCompleteEvent:
		// Restores an operator asked for are silent; the hub's own are not.
		if d.Trigger != resilience.TriggerAuto {
			break
		}
		return "recovery_auto:" + d.Table, webpush.NewNotification(TitleAlert, "Auto-restore: "+d.Table+" restored from backup"), true
	case resilience.RecoveryFailedEvent:
		return "recovery_failed:" + d.Table, webpush.NewNotification(TitleCritical, withReason("Storage recovery FAILED: "+orAll(d.Table), d.Reason)), true
	case resilience.DegradedModeEvent:
		return "degraded:" + d.Table, webpush.NewNotification(TitleCritical, "Storage degraded: "+orAll(d.Table)+" running empty after data loss"), true
	}
	return "", webpush.Notification{}, false
}

func orAll(tables string) string {
	if tables == "" {
		return "all tables"
	}
	return tables
}
