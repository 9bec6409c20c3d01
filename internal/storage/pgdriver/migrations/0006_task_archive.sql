-- Version 6: the tasks domain's archive. Ended tasks past their retention
-- leave agentcom_tasks for this table (TaskStore.Archive), which has the
-- same shape, so the live table and the load at start stay the size of
-- recent work while GET /api/tasks/{id} still finds them.

CREATE TABLE agentcom_task_archive (
    id           text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 256 AND id NOT LIKE 'wf:%'),
    version      bigint NOT NULL CHECK (version >= 0),
    status       text NOT NULL,
    priority     integer NOT NULL,
    submitted_by text NOT NULL,
    assigned_to  text NOT NULL DEFAULT '',
    created_at   bigint NOT NULL,          -- Unix ms
    updated_at   bigint NOT NULL,          -- Unix ms
    body         bytea NOT NULL
);
CREATE INDEX agentcom_task_archive_submitted_by ON agentcom_task_archive (submitted_by, created_at);
CREATE INDEX agentcom_task_archive_created_at ON agentcom_task_archive (created_at);

-- An archive pass selects the live table's ended tasks by end time.
CREATE INDEX agentcom_tasks_ended ON agentcom_tasks (status, updated_at);
