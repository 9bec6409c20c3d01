-- Version 3: messaging. Bodies are the domain's JSON encoding of a
-- message, kept as bytea (the hub never queries inside them); the columns
-- beside them are what listings filter and order on.

-- Sequence counters: "mailbox", "history" and "channel:<name>". A counter
-- row is updated inside the transaction that uses its numbers, so the
-- numbers are gapless and commit in order (a poller that saw seq n never
-- later finds an n-1 committing behind it), and a rolled-back append
-- takes its numbers back with it.
CREATE TABLE agentcom_message_counters (
	name  text PRIMARY KEY,
	value bigint NOT NULL
);

CREATE TABLE agentcom_mailbox_messages (
	agent     text   NOT NULL,
	seq       bigint NOT NULL,
	stored_at bigint NOT NULL,
	body      bytea  NOT NULL,
	PRIMARY KEY (agent, seq)
);
-- Eviction by age.
CREATE INDEX agentcom_mailbox_messages_stored_at ON agentcom_mailbox_messages (stored_at);

CREATE TABLE agentcom_message_history (
	seq        bigint PRIMARY KEY,
	id         text   NOT NULL,
	from_agent text   NOT NULL,
	to_agent   text   NOT NULL,
	channel    text   NOT NULL,
	-- The message's time, or the time it was stored when it has none:
	-- what the history's time filter compares.
	ts         bigint NOT NULL,
	stored_at  bigint NOT NULL,
	body       bytea  NOT NULL
);

CREATE TABLE agentcom_message_channels (
	name        text   PRIMARY KEY,
	description text   NOT NULL,
	created_at  bigint NOT NULL,
	created_by  text   NOT NULL,
	-- Most recent subscriber first.
	subscribers text[] NOT NULL
);

CREATE TABLE agentcom_channel_history (
	channel   text   NOT NULL,
	seq       bigint NOT NULL,
	id        text   NOT NULL,
	stored_at bigint NOT NULL,
	body      bytea  NOT NULL,
	PRIMARY KEY (channel, seq)
);

-- The reply-thread index: the messages the histories still keep, linked
-- to their parent. arrival orders a parent's replies.
CREATE TABLE agentcom_thread_messages (
	id      text      PRIMARY KEY,
	parent  text      NOT NULL,
	arrival bigserial NOT NULL,
	body    bytea     NOT NULL
);
CREATE INDEX agentcom_thread_messages_parent ON agentcom_thread_messages (parent, arrival);
