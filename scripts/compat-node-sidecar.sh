#!/usr/bin/env bash
# Runs the ORIGINAL Node.js clients against this hub, each the way the
# original's README and usage texts describe, and checks what each one does:
#
#   sidecar       sidecar/index.js completes a task submitted by agentcom-submit.js
#   submit        agentcom-submit.js (every priority it offers, --metadata, --target)
#   connect       scripts/connect.js receives a direct message and a broadcast
#   send          scripts/send.js: direct, --broadcast, and an unknown recipient
#   poll          scripts/poll.js reads an offline mailbox, --since, --ack
#   client        agentcom-client.js (hub, id and token edited in a copy): identify,
#                 list_agents, broadcast, JSON ping answered with pong
#   add-agent     sidecar/add-agent.js onboards an agent end to end (pm2 and
#                 openclaw are shims; the default repo is a local git repo holding
#                 the original sidecar), its test task completes
#   recovery      the sidecar, killed (-9) while its agent works and restarted,
#                 recovers the task through task_recovering and it completes
#   remove-agent  sidecar/remove-agent.js revokes the agent with its own token
#   liveness      scripts/connect.js, which never pings, is still connected after
#                 70 s of silence
#
# usage: scripts/compat-node-sidecar.sh /path/to/original/sidecar
#
# The original is not part of this repository: pass the sidecar/ directory of a
# checkout of the original AgentCom project (notno/AgentCom, commit e118a8f) with
# `npm install` done in it. The scripts/*.js helpers and agentcom-client.js are
# taken from the checkout's root and use the sidecar's node_modules. Nothing is
# copied into this tree and the checkout is not modified: everything that runs
# (including the onboarded agent) runs from copies in a temporary directory.
#
# Every check runs; the script prints PASS or FAIL for each and exits 1 if any
# failed. Needs node (18+), npm, git and curl. PORT picks the hub's port
# (default: a free one); COMPAT_KEEP=1 keeps the temporary directory (logs of
# the hub, the sidecars and every client) and prints where it is.
set -uo pipefail
orig="$(cd "${1:?usage: $0 /path/to/original/sidecar}" && pwd)"
origroot="$(cd "$orig/.." && pwd)"
root="$(cd "$(dirname "$0")/.." && pwd)"
[ -f "$orig/index.js" ] && [ -d "$orig/node_modules" ] ||
  { echo "$orig is not an original sidecar/ directory with npm install done" >&2; exit 2; }
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # The onboarded sidecar, started by the pm2 shim.
  for f in "$work"/pm2/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  wait 2>/dev/null
  if [ -n "${COMPAT_KEEP:-}" ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
port="${PORT:-$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')}"
hub="http://127.0.0.1:$port"
export NODE_PATH="$orig/node_modules"

failed=()
pass() { echo "PASS $1: $2"; }
fail() { echo "FAIL $1: $2"; failed+=("$1"); }
# wait_for SECONDS CMD...: runs CMD every 0.2 s until it succeeds (0) or time runs out (1).
wait_for() {
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ $SECONDS -ge $end ] && return 1; sleep 0.2; done
}
api() { local tok="$1"; shift; curl -s -H "Authorization: Bearer $tok" "$@"; }
task_status() {
  api "$admin" "$hub/api/tasks/$1" | node -e 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>{try{console.log(JSON.parse(d).status||"")}catch{console.log("")}})'
}
status_is() { [ "$(task_status "$1")" = "$2" ]; }

go build -o "$work/agentcom" "$root/cmd/agentcom" || exit 2
tok() { "$work/agentcom" token create --agent "$1" ${2:+"$2"} --data "$work/data" 2>/dev/null; }
admin="$(tok ops --admin)"
agent_tok="$(tok gcu-compat)"
alice_tok="$(tok alice)"
bob_tok="$(tok bob)"
dave_tok="$(tok dave)"
for t in "$admin" "$agent_tok" "$alice_tok" "$bob_tok" "$dave_tok"; do
  [ ${#t} -eq 64 ] || { echo "token creation failed" >&2; exit 2; }
done
# Open registration: add-agent.js registers without a join secret.
"$work/agentcom" serve --addr "127.0.0.1:$port" --data "$work/data" --open-registration \
  --log-format json 2>"$work/hub.log" &
pids+=($!)
wait_for 10 curl -fs "$hub/health" || { echo "the hub did not start"; cat "$work/hub.log"; exit 1; }

# --- connect: scripts/connect.js stays up for the whole run (liveness below).
connect_start=$SECONDS
(cd "$origroot" && AGENT_ID=alice AGENT_TOKEN="$alice_tok" HUB_URL="ws://127.0.0.1:$port/ws" \
  CAPABILITIES=search,code exec node scripts/connect.js) >"$work/connect.out" 2>&1 &
pids+=($!)
connect_pid=$!
if wait_for 10 grep -q "Identified as alice" "$work/connect.out"; then
  pass connect "identified"
else
  fail connect "not identified: $(cat "$work/connect.out")"
fi

# --- send: direct, broadcast, unknown recipient.
send() { (cd "$origroot" && AGENT_ID="$1" AGENT_TOKEN="$2" HUB_URL="$hub" node scripts/send.js "${@:3}") 2>&1; }
out="$(send bob "$bob_tok" alice "hello alice")"
if echo "$out" | grep -q "✓ Sent" && wait_for 10 grep -q "bob: hello alice" "$work/connect.out"; then
  pass send "direct message reached connect.js"
else
  fail send "direct: $out"
fi
out="$(send bob "$bob_tok" --broadcast "hello all")"
if echo "$out" | grep -q "✓ Sent" && wait_for 10 grep -q "bob: hello all" "$work/connect.out"; then
  pass send "broadcast reached connect.js"
else
  fail send "broadcast: $out"
fi
# Deliberate deviation: a recipient that holds no token and is not connected is refused.
out="$(send bob "$bob_tok" nobody "hi")"
if echo "$out" | grep -q "404.*unknown_recipient"; then
  pass send "unknown recipient refused (documented deviation)"
else
  fail send "unknown recipient: $out"
fi

# --- poll: dave is offline; his mailbox holds what bob sends him.
send bob "$bob_tok" dave "first" >/dev/null
send bob "$bob_tok" dave "second" >/dev/null
poll() { (cd "$origroot" && AGENT_ID=dave AGENT_TOKEN="$dave_tok" HUB_URL="$hub" node scripts/poll.js "$@") 2>&1; }
out="$(poll)"
if echo "$out" | grep -q "Mailbox: 3 message(s)" && echo "$out" | grep -q "bob: second"; then
  pass poll "offline mailbox (the broadcast and two direct messages)"
else
  fail poll "$out"
fi
# Sequence numbers are the hub's own (one counter for every mailbox, as on the
# original): read them from the listing.
first="$(echo "$out" | sed -n 's/^\[seq:\([0-9]*\)\] bob: first$/\1/p')"
last="$(echo "$out" | sed -n 's/^\[seq:\([0-9]*\)\] bob: second$/\1/p')"
out="$(poll --since "${first:-0}")"
if echo "$out" | grep -q "Mailbox: 1 message(s), last_seq: $last" && ! echo "$out" | grep -q "bob: first"; then
  pass poll "--since"
else
  fail poll "--since $first: $out"
fi
out="$(poll --ack)"
out2="$(poll)"
if echo "$out" | grep -q "Acked through seq $last" && echo "$out2" | grep -q "Mailbox: 0 message(s), last_seq: 0"; then
  pass poll "--ack empties the mailbox"
else
  fail poll "--ack: $out / $out2"
fi

# --- client: agentcom-client.js has its hub, id and token in the code; a copy
# gets ours, and pings every second instead of every 30 s.
sed -e "s#ws://100.126.22.86:4000/ws#ws://127.0.0.1:$port/ws#" \
  -e "s/'skaffen-amtiskaw'/'bob'/" \
  -e "s/617b0174f5d320c094b59b68c41b5ead9efc9dfebdf1211f384a2fbe46a47c44/$bob_tok/" \
  -e "s/}, 30000);/}, 1000);/" -e "s/}, 60000);/}, 3000);/" \
  "$origroot/agentcom-client.js" >"$work/agentcom-client.js"
(cd "$work" && timeout 20 node agentcom-client.js) >"$work/client.out" 2>&1
if grep -q '"type":"identified"' "$work/client.out" && grep -q 'AGENTS_LIST:.*"agent_id":"alice"' "$work/client.out" &&
  grep -q '"type":"message_sent"' "$work/client.out" && grep -q '"type":"pong"' "$work/client.out"; then
  pass client "identify, list_agents, broadcast, ping/pong"
else
  fail client "$(cat "$work/client.out")"
fi

# --- sidecar + submit: the original sidecar completes a task submitted by
# agentcom-submit.js. No repo_dir here: the git workflow is add-agent's part.
cp -r "$orig" "$work/sidecar"
rm -f "$work/sidecar/config.json" "$work/sidecar/queue.json"
mkdir -p "$work/results"
# The fake agent confirms after the wake command returned (the original
# ignores an earlier confirmation) and then writes its result, once the file
# hold is gone (the recovery check holds it back).
cat >"$work/wake.sh" <<WAKE
#!/bin/sh
( sleep 1; touch "$work/results/\$1.started"; sleep 1
  while [ -e "$work/hold" ]; do sleep 0.2; done
  printf '{"status":"success","output":"done by the fake agent"}' > "$work/results/\$1.json" ) >/dev/null 2>&1 &
WAKE
chmod +x "$work/wake.sh"
cat >"$work/sidecar/config.json" <<CONF
{"agent_id":"gcu-compat","token":"$agent_tok","hub_url":"ws://127.0.0.1:$port/ws",
 "hub_api_url":"$hub","capabilities":["code"],
 "wake_command":"$work/wake.sh \${TASK_ID}","confirmation_timeout_ms":30000,
 "results_dir":"$work/results","log_file":"$work/sidecar.log"}
CONF
start_sidecar() {
  (cd "$work/sidecar" && exec node index.js) >>"$work/sidecar.out" 2>&1 &
  side_pid=$!
  pids+=($side_pid)
  wait_for 15 sh -c "curl -fs '$hub/api/agents' | grep -q gcu-compat" || fail sidecar "did not connect"
}
start_sidecar
submit() { (cd "$orig" && node agentcom-submit.js --hub "$hub" "$@") 2>&1; }
out="$(submit --token "$admin" --description "compat check" --target gcu-compat)"
task_id="$(echo "$out" | grep -o 'task-[0-9a-f]\{16\}' | head -1)"
if [ -z "$task_id" ]; then
  fail submit "no task id: $out"
elif wait_for 60 status_is "$task_id" completed; then
  pass submit "task $task_id submitted"
  pass sidecar "completed $task_id"
else
  fail sidecar "task $task_id ended as '$(task_status "$task_id")'"
  tail -n 20 "$work/sidecar.log" "$work/sidecar.out"
fi
# --- recovery: the sidecar is killed (-9) while its agent works; restarted, it
# reports task_recovering from its queue.json, and the task still completes
# (the hub answers task_continue, or task_reassign and assigns it again).
touch "$work/hold"
out="$(submit --token "$admin" --description "recovery check" --target gcu-compat)"
task_id="$(echo "$out" | grep -o 'task-[0-9a-f]\{16\}' | head -1)"
if [ -z "$task_id" ]; then
  fail recovery "no task id: $out"
elif ! wait_for 30 grep -q "\"confirmation_received\".*$task_id" "$work/sidecar.log"; then
  fail recovery "the agent never confirmed $task_id"
else
  kill -9 "$side_pid"
  wait "$side_pid" 2>/dev/null
  start_sidecar
  if wait_for 15 grep -Eq "\"recovery_(continued|reassigned)\".*$task_id" "$work/sidecar.log"; then
    how="$(grep -Eo "recovery_(continued|reassigned)" "$work/sidecar.log" | tail -1)"
    rm -f "$work/hold"
    if wait_for 60 status_is "$task_id" completed; then
      pass recovery "task_recovering answered ($how), $task_id completed"
    else
      fail recovery "$task_id ended as '$(task_status "$task_id")' after $how"
    fi
  else
    fail recovery "no task_continue or task_reassign after the restart: $(tail -n 5 "$work/sidecar.log")"
  fi
fi
rm -f "$work/hold"

# Every priority agentcom-submit.js offers is accepted ("critical" is normal, as
# on the original); an agent token may submit; a wrong token is a 401.
for p in low normal urgent critical; do
  out="$(submit --token "$admin" --description "prio $p" --priority "$p" --metadata '{"issue":42}')"
  echo "$out" | grep -q "Task submitted successfully" || fail submit "--priority $p: $out"
done
out="$(submit --token "$alice_tok" --description "from an agent")"
echo "$out" | grep -q "Task submitted successfully" || fail submit "agent token: $out"
out="$(submit --token 0000 --description "bad token")"
echo "$out" | grep -q "HTTP 401" || fail submit "bad token: $out"
[[ " ${failed[*]} " == *" submit "* ]] || pass submit "priorities, metadata, agent token, bad token"
# Drain the queue so that add-agent's untargeted test task goes to its own agent.
kill "$side_pid" 2>/dev/null
for id in $(api "$admin" "$hub/api/tasks?status=queued&limit=0" | grep -o 'task-[0-9a-f]\{16\}' | sort -u); do
  api "$admin" -X POST "$hub/api/tasks/$id/cancel" >/dev/null
done

# --- add-agent: shims for pm2 and openclaw, HOME in the temporary directory.
shim="$work/shim"
mkdir -p "$shim" "$work/pm2" "$work/home"
cat >"$shim/pm2" <<'PM2'
#!/bin/sh
# pm2 stand-in: start runs the app of an ecosystem file in the background.
dir="$PM2_SHIM_DIR"
case "$1" in
--version) echo "5.3.0" ;;
jlist) echo "[]" ;;
save) ;;
start)
  app="$(node -e 'const a=require(process.argv[1]).apps[0];console.log([a.name,a.cwd,a.script].join("\n"))' "$2")"
  name="$(echo "$app" | sed -n 1p)"; cwd="$(echo "$app" | sed -n 2p)"; script="$(echo "$app" | sed -n 3p)"
  (cd "$cwd" && exec setsid /bin/bash "$script") >"$dir/$name.log" 2>&1 &
  echo $! >"$dir/$name.pid" ;;
stop | delete)
  [ -f "$dir/$2.pid" ] || exit 1
  kill "$(cat "$dir/$2.pid")" 2>/dev/null; rm -f "$dir/$2.pid" ;;
*) exit 1 ;;
esac
PM2
cat >"$shim/openclaw" <<'CLAW'
#!/bin/sh
# openclaw stand-in: "agent --message M --session-id TASK_ID" confirms and
# reports success in the sidecar's results directory (its working directory).
[ "$1" = --version ] && { echo "openclaw 1.0.0"; exit 0; }
while [ $# -gt 0 ]; do [ "$1" = --session-id ] && id="$2"; shift; done
( sleep 1; touch "results/$id.started"; sleep 1
  printf '{"status":"success","output":"onboarded"}' > "results/$id.json" ) >/dev/null 2>&1 &
CLAW
chmod +x "$shim/pm2" "$shim/openclaw"
# The default repo: a git repo (branch main) holding the original sidecar with
# its node_modules, so that the clone's npm install needs no network.
seed="$work/seed.git"
git init -q -b main "$work/seed" && cp -r "$orig" "$work/seed/sidecar" &&
  rm -f "$work/seed/sidecar/config.json" "$work/seed/sidecar/queue.json" &&
  printf 'config.json\nqueue.json\nresults/\nlogs/\nsidecar.log\n' >"$work/seed/sidecar/.gitignore" &&
  git -C "$work/seed" add -A -f && git -C "$work/seed" -c user.name=compat -c user.email=compat@localhost \
    commit -q -m seed && git clone -q --bare "$work/seed" "$seed"
api "$admin" -X PUT -H 'Content-Type: application/json' -d "{\"url\":\"$seed\"}" \
  "$hub/api/config/default-repo" >/dev/null
onboard_env=(env HOME="$work/home" PATH="$shim:$PATH" PM2_SHIM_DIR="$work/pm2" npm_config_offline=true)
out="$(cd "$orig" && "${onboard_env[@]}" node add-agent.js --hub "$hub" --name gcu-added 2>&1)"
rc=$?
echo "$out" >"$work/add-agent.out"
if [ $rc -eq 0 ] && echo "$out" | grep -q 'Agent "gcu-added" is online!'; then
  pass add-agent "registered, cloned, configured, started, test task completed"
else
  fail add-agent "exit $rc: $out"
  tail -n 20 "$work/pm2/agentcom-gcu-added.log" 2>/dev/null
fi

# --- remove-agent: with the token from the agent's config (no --token).
added_tok="$(node -e 'console.log(require(process.argv[1]).token)' \
  "$work/home/.agentcom/gcu-added/repo/sidecar/config.json" 2>/dev/null)"
out="$(cd "$orig" && "${onboard_env[@]}" node remove-agent.js --name gcu-added --hub "$hub" 2>&1)"
code="$(api "${added_tok:-none}" -o /dev/null -w '%{http_code}' "$hub/api/mailbox/gcu-added")"
if echo "$out" | grep -q "warning"; then
  fail remove-agent "$out"
elif [ "$code" != 401 ]; then
  fail remove-agent "the agent's token still works (mailbox answered $code)"
elif [ -e "$work/home/.agentcom/gcu-added" ] || [ -e "$work/pm2/agentcom-gcu-added.pid" ]; then
  fail remove-agent "directory or process left behind"
else
  pass remove-agent "token revoked, process stopped, directory removed"
fi

# --- liveness: connect.js never pings; the hub must not drop it as dead. The
# idle limit is 60 s and the reaper looks every 30 s: 100 s covers both.
wait_for $((100 - (SECONDS - connect_start) + 1)) false
if kill -0 "$connect_pid" 2>/dev/null && ! grep -q disconnected "$work/connect.out"; then
  pass liveness "connect.js still connected after $((SECONDS - connect_start)) s without pings"
else
  fail liveness "connect.js was disconnected: $(tail -n 3 "$work/connect.out")"
fi

if grep -q '"error"' "$work/sidecar.log" 2>/dev/null; then
  echo "the original sidecar logged errors:"; grep '"error"' "$work/sidecar.log" | head
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
echo "PASS: every original client works against this hub"
