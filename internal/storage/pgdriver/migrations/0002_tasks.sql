-- Version 2: the tasks domain. Live tasks and the dead letter have the
-- same shape: the columns listings filter and sort on, and body, the
-- task as the domain encodes it (JSON, kept byte for byte). version
-- orders the writes of one task; a row is only replaced by a newer one.

CREATE TABLE agentcom_tasks (
    id           text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 256 AND id NOT LIKE 'wf:%'),
    version      bigint NOT NULL CHECK (version >= 0),
    status       text NOT NULL,
    priority     integer NOT NULL,
    submitted_by text NOT NULL,
    assigned_to  text NOT NULL DEFAULT '', -- '' when not assigned
    created_at   bigint NOT NULL,          -- Unix ms
    updated_at   bigint NOT NULL,          -- Unix ms
    body         bytea NOT NULL
);
-- Listings by status (the ended ones are not in the queue's memory), in
-- scheduling order (lane, then creation).
CREATE INDEX agentcom_tasks_status ON agentcom_tasks (status, priority, created_at);
CREATE INDEX agentcom_tasks_submitted_by ON agentcom_tasks (submitted_by, created_at);
CREATE INDEX agentcom_tasks_assigned_to ON agentcom_tasks (assigned_to) WHERE assigned_to <> '';
CREATE INDEX agentcom_tasks_created_at ON agentcom_tasks (created_at);

CREATE TABLE agentcom_task_dead_letter (
    id           text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 256 AND id NOT LIKE 'wf:%'),
    version      bigint NOT NULL CHECK (version >= 0),
    status       text NOT NULL,
    priority     integer NOT NULL,
    submitted_by text NOT NULL,
    assigned_to  text NOT NULL DEFAULT '',
    created_at   bigint NOT NULL,
    updated_at   bigint NOT NULL,
    body         bytea NOT NULL
);
CREATE INDEX agentcom_task_dead_letter_priority ON agentcom_task_dead_letter (priority, created_at);
CREATE INDEX agentcom_task_dead_letter_submitted_by ON agentcom_task_dead_letter (submitted_by, created_at);
CREATE INDEX agentcom_task_dead_letter_created_at ON agentcom_task_dead_letter (created_at);

-- Workflow records (pauses, periodic schedules): opaque values by key.
CREATE TABLE agentcom_task_workflow (
    key   text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 1024),
    value bytea NOT NULL
);
