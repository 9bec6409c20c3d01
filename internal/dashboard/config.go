package dashboard

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/agentcom/agentcom/internal/agents"
	"github.com/agentcom/agentcom/internal/auth"
	"github.com/agentcom/agentcom/internal/bus"
	"github.com/agentcom/agentcom/internal/presence"
	"github.com/agentcom/agentcom/internal/storage"
	"github.com/agentcom/agentcom/internal/tasks"
)

// Config tunes the dashboard. Zero fields take the defaults of
// DefaultConfig.
type Config struct {
	// FlushInterval batches events into one frame (the original's 100 ms).
	FlushInterval time.Duration
	// SnapshotInterval is the least time between two snapshot builds;
	// requests in between share the next build.
	SnapshotInterval time.Duration
	// PingInterval is how often the server pings each socket; a socket
	// that does not answer within PongTimeout is closed.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// SendBuffer is how many frames, and SendBytes how many bytes, may
	// wait for a slow browser before its socket is closed.
	SendBuffer int
	SendBytes  int64
	// StorageRefresh is how often the storage health view is refreshed
	// (it is also refreshed after every storage event and action);
	// StorageTimeout bounds one refresh.
	StorageRefresh time.Duration
	StorageTimeout time.Duration
	// ActionTimeout bounds a backup, compaction or restore started from
	// the page.
	ActionTimeout time.Duration
	// DepthSample is how often the queue depth is sampled for the chart;
	// QueueSample is the spacing of the three samples of "Queue growing".
	DepthSample time.Duration
	QueueSample time.Duration
	// HistoryPersist is how often the chart history is written to its
	// table (and on shutdown).
	HistoryPersist time.Duration
	// OfflineGrace is how long an agent that left stays in "Agent
	// offline" unless it comes back.
	OfflineGrace time.Duration
	// StuckAfter: an assigned task not updated, whose holder was not
	// heard from, for this long is stuck.
	StuckAfter time.Duration
	// BackupStale: a last backup older than this is a warning;
	// BackupGrace: "never run" is not a warning during this time after
	// start (the first backup runs shortly after start).
	BackupStale time.Duration
	BackupGrace time.Duration
	// FailureMinSample is the fewest finished attempts in the last hour
	// for "High failure rate" to be judged.
	FailureMinSample int
	// MaxListed caps the queued, running and dead-letter lists of a
	// snapshot (counts stay exact).
	MaxListed int

	// PushCooldown: the same alert does not notify twice within it.
	PushCooldown time.Duration
	// HealthPoll is how often the notifier looks for ok → warning/critical.
	HealthPoll time.Duration
	// VAPIDPublicKey and VAPIDPrivateKey (the environment variables of the
	// same names) override the key file in the data directory when both
	// are set.
	VAPIDPublicKey  string
	VAPIDPrivateKey string
	// PushClient sends push messages; nil means webpush's default client.
	PushClient *http.Client
	// PushAllowPrivate accepts push endpoints over http and on loopback,
	// private or link-local addresses (tests, closed networks); by default
	// only https endpoints on public addresses are used.
	PushAllowPrivate bool
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		FlushInterval: 100 * time.Millisecond, SnapshotInterval: 250 * time.Millisecond,
		PingInterval: 25 * time.Second, PongTimeout: 15 * time.Second, SendBuffer: 256, SendBytes: 8 << 20,
		StorageRefresh: 30 * time.Second, StorageTimeout: 5 * time.Second, ActionTimeout: 5 * time.Minute,
		DepthSample: 5 * time.Second, QueueSample: time.Minute, HistoryPersist: 15 * time.Second,
		OfflineGrace: 10 * time.Minute, StuckAfter: 5 * time.Minute,
		BackupStale: 48 * time.Hour, BackupGrace: 15 * time.Minute, FailureMinSample: 1,
		MaxListed: 200, PushCooldown: 10 * time.Minute, HealthPoll: time.Minute,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&c.FlushInterval, d.FlushInterval)
	set(&c.SnapshotInterval, d.SnapshotInterval)
	set(&c.PingInterval, d.PingInterval)
	set(&c.PongTimeout, d.PongTimeout)
	set(&c.StorageRefresh, d.StorageRefresh)
	set(&c.StorageTimeout, d.StorageTimeout)
	set(&c.ActionTimeout, d.ActionTimeout)
	set(&c.DepthSample, d.DepthSample)
	set(&c.QueueSample, d.QueueSample)
	set(&c.HistoryPersist, d.HistoryPersist)
	set(&c.OfflineGrace, d.OfflineGrace)
	set(&c.StuckAfter, d.StuckAfter)
	set(&c.BackupStale, d.BackupStale)
	set(&c.BackupGrace, d.BackupGrace)
	set(&c.PushCooldown, d.PushCooldown)
	set(&c.HealthPoll, d.HealthPoll)
	if c.SendBuffer <= 0 {
		c.SendBuffer = d.SendBuffer
	}
	if c.SendBytes <= 0 {
		c.SendBytes = d.SendBytes
	}
	if c.FailureMinSample <= 0 {
		c.FailureMinSample = d.FailureMinSample
	}
	if c.MaxListed <= 0 {
		c.MaxListed = d.MaxListed
	}
	return c
}

// Queue is what the dashboard reads from the task queue.
type Queue interface {
	Stats() tasks.Stats
	LaneCounts() [tasks.Lanes]int
	Queued(limit int) []*tasks.Task
	Assigned() []*tasks.Task
	ListDeadLetter(f tasks.Filter) ([]*tasks.Task, int, error)
	Get(id string) (*tasks.Task, error)
	// Search lists both tables (the recent lists are seeded from it at
	// start, so a restart does not empty them).
	Search(f tasks.Filter) ([]*tasks.Task, int, error)
	PausedState() tasks.Paused
	Schedules() []tasks.Schedule
}

// Scheduler carries out the page's task actions.
type Scheduler interface {
	RetryDeadLetter(id string) (*tasks.Task, error)
	Cancel(taskID, by string, canAny bool, reason string) (*tasks.Task, string, error)
	Pause(kind tasks.PauseKind, name, by string) (bool, error)
	Resume(kind tasks.PauseKind, name, by string) (bool, error)
	RunScheduleNow(name, by string) (*tasks.Task, error)
	SetSchedulePaused(name string, paused bool, by string) (tasks.Schedule, error)
	RemoveSchedule(name, by string) error
}

// Agents lists the agents' scheduling state.
type Agents interface {
	List() []agents.Agent
}

// Presence lists connected agents.
type Presence interface {
	List() []presence.Entry
}

// Verifier tells whether the token a socket was opened with still holds.
type Verifier interface {
	Live(id auth.Identity) bool
}

// Deps are what the dashboard reads and drives.
type Deps struct {
	Bus       *bus.Bus
	Queue     Queue
	Scheduler Scheduler
	Agents    Agents
	Presence  Presence
	// Tokens tells when a socket's token was revoked; the routes' access
	// levels have already let the caller in (api.Caller).
	Tokens Verifier
	// Storage may be nil: the storage panel then says unavailable.
	Storage Storage
	// NotifyCancel tells an agent its task was cancelled (optional).
	NotifyCancel func(agentID, taskID string) bool
	// Series keeps the chart history across restarts; nil keeps it in
	// memory only.
	Series storage.SeriesStore
	// Alerts lists the alerter's active and past alerts (optional).
	Alerts AlertSource
	// Messages reads messaging for the messages view (optional).
	Messages MessageSource
	// PushSubscriptions holds web push subscriptions; nil disables push.
	PushSubscriptions storage.PushSubscriptionStore
	// DataDir holds the VAPID key file.
	DataDir string
	// SharedKeys, when set, keeps the VAPID keys in these settings
	// instead of DataDir: on a store several hubs share, so that they all
	// push with the key pair browsers subscribed with.
	SharedKeys storage.SettingsStore
	Log        *slog.Logger
}
