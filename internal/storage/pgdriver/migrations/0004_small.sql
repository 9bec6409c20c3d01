-- Version 4: the small stores (tokens, settings, web push subscriptions,
-- the dashboard's chart history).

-- Bearer tokens: only the SHA-256 of the plaintext (storage.TokenHash).
CREATE TABLE agentcom_tokens (
    hash       text PRIMARY KEY CHECK (hash ~ '^[0-9a-f]{64}$'),
    agent_id   text NOT NULL,
    role       text NOT NULL,
    prefix     text NOT NULL,
    created_at bigint NOT NULL -- Unix ms
);
-- Revocation and "does this agent hold a token" go by agent.
CREATE INDEX agentcom_tokens_agent ON agentcom_tokens (agent_id);

-- Runtime settings: JSON values by key.
CREATE TABLE agentcom_settings (
    key   text PRIMARY KEY,
    value jsonb NOT NULL
);

-- Web push subscriptions, one per endpoint.
CREATE TABLE agentcom_push_subscriptions (
    endpoint text PRIMARY KEY,
    body     jsonb NOT NULL
);

-- Dashboard chart history, one row per minute (Unix time / 60 s).
CREATE TABLE agentcom_series (
    minute bigint PRIMARY KEY CHECK (minute >= 0),
    body   jsonb NOT NULL
);
