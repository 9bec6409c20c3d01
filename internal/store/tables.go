// Package store keeps the hub's persistent tables, one bbolt file per table.
//
// Every table holds one bucket of byte keys and values. Writes go through a
// per-table group-commit loop: concurrent Update calls are gathered into one
// bbolt transaction and one fsync, so a write is durable before Update
// returns without durability capping throughput. The package also offers
// what the resilience layer drives: consistent hot backups, integrity
// checks, compaction into a new file with an atomic swap, restore from a
// backup file, and per-table space statistics.
package store

// Table ids. The first nine are the ids of the original hub's admin API and
// must keep these exact spellings; the rest are tables this hub adds.
const (
	TaskQueue      = "task_queue"
	TaskDeadLetter = "task_dead_letter"
	AgentMailbox   = "agent_mailbox"
	MessageHistory = "message_history"
	AgentChannels  = "agent_channels"
	ChannelHistory = "channel_history"
	Config         = "agentcom_config"
	ThreadMessages = "thread_messages"
	ThreadReplies  = "thread_replies"

	// Tokens holds hashed auth tokens.
	Tokens = "auth_tokens"
	// Meta holds counters that must never go backwards (sequences).
	Meta = "hub_meta"
	// PushSubscriptions holds web push subscriptions.
	PushSubscriptions = "push_subscriptions"
	// DashboardSeries holds the dashboard's chart history (one record
	// per minute, seven days).
	DashboardSeries = "dashboard_series"
	// TaskArchive holds ended tasks past their retention (the tasks
	// domain's archive). A data directory without it gets it at open.
	TaskArchive = "task_archive"
)

// AdminTables returns the nine table ids the admin API accepts, in the
// original's order.
func AdminTables() []string {
	return []string{
		TaskQueue, TaskDeadLetter, AgentMailbox, MessageHistory,
		AgentChannels, ChannelHistory, Config, ThreadMessages, ThreadReplies,
	}
}

// AllTables returns every table the hub opens: the admin tables followed by
// the hub's own.
func AllTables() []string {
	return append(AdminTables(), Tokens, Meta, PushSubscriptions, DashboardSeries, TaskArchive)
}
