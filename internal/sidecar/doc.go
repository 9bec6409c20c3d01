// Package sidecar is the agent-side daemon (`agentcom sidecar --config
// FILE`): it keeps a WebSocket to the hub, receives pushed tasks one at a
// time, wakes the agent, watches the results directory for the agent's
// answer and reports it, surviving crashes, hub restarts and network loss
// without losing or duplicating a report.
//
// # Design
//
// One event loop goroutine owns all task state and the durable state
// file. Everything that can block (the connection, the wake command, git)
// runs on its own goroutine and reports back as an event, so heartbeats
// never wait on task work. Every externally visible step is preceded by a
// durable state write (temp file, fsync, rename, fsync the directory): a
// task is saved before task_accepted is sent, and a terminal report is
// saved in the outbox before it is sent and removed only when the hub
// acknowledges it (task_ack) or refuses it for good (stale generation,
// task gone).
//
// # Configuration
//
// The config file is the original config.json (agent_id, token, hub_url,
// hub_api_url, repo_dir, reviewer, wake_command, capabilities,
// confirmation_timeout_ms, results_dir, log_file) plus the knobs the
// original hard-coded (wake timeout and retry delays, heartbeat, backoff,
// progress period, state file...). `agentcom sidecar --fields` prints
// every key with its meaning, default and environment variable
// (AGENTCOM_SIDECAR_<KEY>, which overrides the file). Relative paths are
// resolved against the config file's directory. Unknown keys are logged.
//
// hub_urls lists the hubs of a cluster. The sidecar stays on a hub while it
// serves and moves to the next at once when the hub is unreachable or the
// connection ends because of the hub (lost, 1001, 1011, 1012, 1013, 1014);
// it backs off only after every hub failed in a row. Recovery on the new
// hub is the same as after any reconnect.
//
// # Talking to the agent
//
// The wake command receives the task only through its environment, never
// by text substitution: TASK_ID, TASK_FILE (a JSON document, see
// TaskFile), TASK_DESCRIPTION, TASK_JSON, TASK_GENERATION, RESULTS_DIR,
// RESULT_FILE, STARTED_FILE, HUB_URL (HTTP), HUB_WS_URL, AGENT_ID, and
// REPO_DIR / TASK_BRANCH with the git workflow. A string wake_command runs
// through /bin/sh -c, so the original template
// `openclaw agent --message "Task: ${TASK_JSON}" --session-id ${TASK_ID}`
// keeps working, now safely. The token is not passed on.
//
// The agent answers with files in results_dir, as in the original:
// <task_id>.started (any content) confirms the start, at any time, even
// before the wake command exits; <task_id>.json is the result, read once
// it has not changed for result_settle_ms (write it to a temp name and
// rename it). {"status":"success",...} reports task_complete with the
// whole object as result; any other object reports task_failed with its
// "reason" (else "error", else "message", else "unknown") and the object
// as output. Other failure reasons: "result_parse_error: ...",
// "confirmation_timeout", and "wake_failed_after_N_attempts" where N, as
// in the original, counts the retries (the default 3 means 4 attempts).
//
// # Run mode
//
// With run_command instead of wake_command, the command is the agent: it
// runs for the task's whole life (run.go), detached in its own process
// group, its output in a task log that is streamed to the hub as
// task_progress output. Its exit code, or the result file when written,
// decides. The process outlives a sidecar restart and is found again from
// the state file; cancel and reassignment stop its group (SIGTERM, then
// SIGKILL after kill_grace_ms). After a success, the task's verify
// commands run (verify.go); a failure sends the agent back with
// VERIFY_FEEDBACK. Usage lines ({"agentcom_usage":{...}}) and result-file
// usage are summed and reported with the task. README.md "Agents" is the
// user-facing contract.
//
// # Recovery
//
// After a restart, and after every reconnect, a task not confirmed on the
// current connection is announced with task_recovering. task_continue
// resumes it at the hub's generation (re-running the wake if the agent was
// never woken) and result files written meanwhile are picked up;
// task_reassign or task_cancelled drop it. While a task is held, a second
// task_assign is answered task_rejected "busy"; a re-delivery of the held
// task is accepted again. A state file that cannot be decoded is moved to
// <state_file>.corrupt-<unix ms> and reported (event state_corrupt), never
// silently emptied. A file of the original Node sidecar is read too.
//
// # Logs
//
// JSON lines via log/slog with component, agent_id, task_id and event
// keys; the token is never logged. log_file is rotated at 10 MiB.
package sidecar
