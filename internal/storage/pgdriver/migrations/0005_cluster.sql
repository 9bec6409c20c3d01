-- Version 5: the cluster of hubs sharing this database (internal/cluster).

-- Bus payloads too large for a NOTIFY (8000 bytes): the publisher stores
-- the payload here and notifies its id; every hub deletes rows older than
-- its bus's payload lifetime.
CREATE TABLE cluster_bus_payloads (
	id         bigserial   PRIMARY KEY,
	created_at timestamptz NOT NULL DEFAULT now(),
	payload    bytea       NOT NULL
);
CREATE INDEX cluster_bus_payloads_created_at ON cluster_bus_payloads (created_at);

-- The leader: one row, written by the hub that holds the leader advisory
-- lock when it takes over. epoch grows with every takeover and fences the
-- work of earlier leaders. The leader renews renewed_at while it runs; a
-- lease left to lapse (a frozen process whose session stays up) lets the
-- others end its session.
CREATE TABLE cluster_leader (
	id         smallint    PRIMARY KEY CHECK (id = 1),
	hub_id     text        NOT NULL,
	url        text        NOT NULL,
	epoch      bigint      NOT NULL,
	since      timestamptz NOT NULL DEFAULT now(),
	renewed_at timestamptz NOT NULL DEFAULT now()
);

-- The hubs: each refreshes its row while it runs; a row not refreshed
-- for a few intervals is a hub that is gone.
CREATE TABLE cluster_hubs (
	hub_id     text        PRIMARY KEY,
	url        text        NOT NULL,
	started_at timestamptz NOT NULL DEFAULT now(),
	seen_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cluster_hubs_seen_at ON cluster_hubs (seen_at);

-- The cluster's identity: a random id made once, which names the cluster
-- where the database does not (the NATS subjects of the hubs, so that
-- clusters sharing a NATS server keep apart).
CREATE TABLE cluster_meta (
	id         smallint PRIMARY KEY CHECK (id = 1),
	cluster_id text     NOT NULL
);
INSERT INTO cluster_meta (id, cluster_id) VALUES (1, replace(gen_random_uuid()::text, '-', ''));
