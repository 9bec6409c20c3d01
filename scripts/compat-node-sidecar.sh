#!/usr/bin/env bash
# Runs the ORIGINAL Node.js sidecar (and agentcom-submit.js) against this
# hub and checks that a task goes from submission to completed.
#
# usage: scripts/compat-node-sidecar.sh /path/to/original/sidecar
#
# The original sidecar is not part of this repository: pass the sidecar/
# directory of a checkout of the original AgentCom project with its npm
# dependencies installed (npm install). Nothing is copied into this tree.
set -euo pipefail
orig="${1:?usage: $0 /path/to/original/sidecar}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'kill $hub_pid $side_pid 2>/dev/null || true; rm -rf "$work"' EXIT
port="${PORT:-47123}"

go build -o "$work/agentcom" "$root/cmd/agentcom"
admin="$("$work/agentcom" token create --agent ops --admin --data "$work/data" 2>/dev/null)"
agent_tok="$("$work/agentcom" token create --agent gcu-compat --data "$work/data" 2>/dev/null)"
"$work/agentcom" serve --addr "127.0.0.1:$port" --data "$work/data" --log-format json 2>"$work/hub.log" &
hub_pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done

# No repo_dir: the original's git submit crashes on its own queue state
# (its bug S1), whatever the hub.
# A copy of the sidecar so its queue.json and config stay out of the original.
cp -r "$orig" "$work/sidecar"
mkdir -p "$work/results"
# The fake agent confirms after the wake command returned (the original
# ignores an earlier confirmation) and then writes its result.
cat > "$work/wake.sh" <<WAKE
#!/bin/sh
( sleep 1; touch "$work/results/\$1.started"; sleep 1
  printf '{"status":"success","output":"done by the fake agent"}' > "$work/results/\$1.json" ) >/dev/null 2>&1 &
WAKE
chmod +x "$work/wake.sh"
cat > "$work/sidecar/config.json" <<CONF
{"agent_id":"gcu-compat","token":"$agent_tok","hub_url":"ws://127.0.0.1:$port/ws",
 "hub_api_url":"http://127.0.0.1:$port","capabilities":["code"],
 "wake_command":"$work/wake.sh \${TASK_ID}","confirmation_timeout_ms":30000,
 "results_dir":"$work/results","log_file":"$work/sidecar.log"}
CONF
(cd "$work/sidecar" && node index.js >"$work/sidecar.out" 2>&1) &
side_pid=$!
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$port/api/agents" | grep -q gcu-compat && break; sleep 0.2
done

# Submit with the original CLI.
out="$(cd "$work/sidecar" && node agentcom-submit.js --hub "http://127.0.0.1:$port" --token "$admin" \
  --description "compat check" --target gcu-compat 2>&1 || true)"
echo "$out"
task_id="$(echo "$out" | grep -o 'task-[0-9a-f]\{16\}' | head -1)"
[ -n "$task_id" ] || { echo "FAIL: agentcom-submit.js did not print a task id"; exit 1; }
for _ in $(seq 100); do
  status="$(curl -fs -H "Authorization: Bearer $admin" "http://127.0.0.1:$port/api/tasks/$task_id" | grep -o '"priority":[0-9],"status":"[a-z_]*"' | sed 's/.*"status":"//; s/"$//')"
  [ "$status" = completed ] && break
  sleep 0.2
done
curl -fs -H "Authorization: Bearer $admin" "http://127.0.0.1:$port/api/tasks/$task_id"; echo
if [ "$status" != completed ]; then
  echo "FAIL: task $task_id ended as '$status'"; tail -n 20 "$work/sidecar.log" "$work/hub.log" "$work/sidecar.out"; exit 1
fi
if grep -q '"error"' "$work/sidecar.log"; then
  echo "sidecar logged errors:"; grep '"error"' "$work/sidecar.log" | head
fi
echo "PASS: the original Node sidecar completed $task_id through this hub"
