#!/usr/bin/env bash
# bench-peers.sh OUTDIR: the peers' own benchmarks, for issue 14's ratios,
# run on this machine in the same session as ours (scripts/bench-issue14.sh
# calls this at its end; it also runs alone).
#
#   River  `river bench` (Go job queue on PostgreSQL), against the tasks figure
#   NATS   `nats bench` (natscli), against the messages and broadcast figures
#
# Nothing of the peers is committed here: the binaries are built from their
# published sources into $PEERS_BIN (default /tmp/peers) when missing.
#
# Writes OUTDIR/peers/results.txt (every command, its output, uptime before
# and after) and OUTDIR/peers/results.jsonl (one JSON object per figure:
# peer, run, shape, value, unit, command, version, load before/after), which
# scripts/bench-summary.sh reads.
#
# Environment (defaults in brackets; QUICK=1 shrinks every size):
#   AGENTCOM_BENCH_PG  PostgreSQL base URL [postgres://postgres@127.0.0.1:5432/test]
#   NATS_URL           running NATS server with JetStream [nats://127.0.0.1:4222]
#   PEERS_BIN          where river, nats, nats-server live or are built [/tmp/peers]
#   RIVER_VERSION      cmd/river module version to `go install` [v0.51.2]; when
#                      the module proxy lacks it (it does not serve the nested
#                      cmd/river module), built from RIVER_MIRROR at RIVER_REF
#   RIVER_MIRROR       git dir of a River clone [/work/.mirror/riverqueue+river/repo]
#   RIVER_REF          revision of it to build [HEAD]
#   NATSCLI_VERSION    [v0.5.0]   NATS_SERVER_VERSION (fsync-always server) [v2.15.0]
#   RIVER_JOBS         burn-down run: jobs inserted, then worked [20000; QUICK 5000]
#   RIVER_DURATION     continuous run: insert and work for this long [30s; QUICK 5s]
#   NATS_AGENTS        connections on each side (our 1,000 agents) [1000; QUICK 100]
#   NATS_MSGS          messages in the direct and JetStream runs [20000; QUICK 5000]
#   NATS_FANOUT_MSGS   messages each fan-out subscriber receives [2000; QUICK 200]
#   NATS_JS_CONSUMERS  clients sharing the durable consumer [100; QUICK 10]
#   NATS_FSYNC         1: also a JetStream run on a private nats-server with
#                      sync_interval: always (fsync before every ack, as our
#                      store's durability) [1]
#   PEER_TIMEOUT       cap on each peer command [600s]
set -euo pipefail
shopt -s inherit_errexit
out="${1:?usage: bench-peers.sh OUTDIR}"
quick="${QUICK:-0}"
q() { if [ "$quick" = 1 ]; then echo "$2"; else echo "$1"; fi; }
pgbase="${AGENTCOM_BENCH_PG:-postgres://postgres@127.0.0.1:5432/test}"
nats_url="${NATS_URL:-nats://127.0.0.1:4222}"
peers="${PEERS_BIN:-/tmp/peers}"
river_version="${RIVER_VERSION:-v0.51.2}"
river_mirror="${RIVER_MIRROR:-/work/.mirror/riverqueue+river/repo}"
river_ref="${RIVER_REF:-HEAD}"
natscli_version="${NATSCLI_VERSION:-v0.5.0}"
nats_server_version="${NATS_SERVER_VERSION:-v2.15.0}"
river_jobs="${RIVER_JOBS:-$(q 20000 5000)}"
river_duration="${RIVER_DURATION:-$(q 30s 5s)}"
nats_agents="${NATS_AGENTS:-$(q 1000 100)}"
nats_msgs="${NATS_MSGS:-$(q 20000 5000)}"
fan_msgs="${NATS_FANOUT_MSGS:-$(q 2000 200)}"
js_consumers="${NATS_JS_CONSUMERS:-$(q 100 10)}"
nats_fsync="${NATS_FSYNC:-1}"
peer_timeout="${PEER_TIMEOUT:-600s}"

mkdir -p "$out/peers" "$peers"
txt="$out/peers/results.txt"
jsonl="$out/peers/results.jsonl"
: >"$txt"
: >"$jsonl"
work="$(mktemp -d)"
bg=()
riverdb=""
cleanup() {
  for p in "${bg[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${bg[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$riverdb" ]; then psql -q "$pgbase" -c "DROP DATABASE IF EXISTS $riverdb WITH (FORCE)" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
log() { echo "$*" | tee -a "$txt"; }

# --- build the peers (their sources stay outside this repository) ---------
if [ ! -x "$peers/river" ]; then
  log "== building river: go install github.com/riverqueue/river/cmd/river@$river_version"
  if ! GOBIN="$peers" go install "github.com/riverqueue/river/cmd/river@$river_version" >>"$txt" 2>&1; then
    # The module proxy serves the root module only; cmd/river is a nested
    # module it does not have. Build it from a clone of the repository,
    # outside the workspace (GOWORK=off) so that its go.mod picks the
    # published River modules it was released against.
    log "== module proxy has no cmd/river@$river_version; building from $river_mirror at $river_ref"
    git clone -q "$river_mirror" "$work/river-src"
    git -C "$work/river-src" checkout -q "$river_ref"
    (cd "$work/river-src/cmd/river" && GOWORK=off GOFLAGS=-mod=mod go build -o "$peers/river" .) >>"$txt" 2>&1
    echo "built from $river_mirror at $(git -C "$work/river-src" describe --tags --always) ($(git -C "$work/river-src" rev-parse HEAD)), GOWORK=off" >"$peers/river.source"
    log "   river source: $(cat "$peers/river.source")"
  fi
fi
if [ ! -x "$peers/nats" ]; then
  log "== building nats: go install github.com/nats-io/natscli/nats@$natscli_version"
  GOBIN="$peers" go install "github.com/nats-io/natscli/nats@$natscli_version" >>"$txt" 2>&1
fi
if [ "$nats_fsync" = 1 ] && [ ! -x "$peers/nats-server" ]; then
  log "== building nats-server: go install github.com/nats-io/nats-server/v2@$nats_server_version"
  GOBIN="$peers" go install "github.com/nats-io/nats-server/v2@$nats_server_version" >>"$txt" 2>&1 || {
    log "   could not build nats-server; the fsync-always JetStream run is skipped"; nats_fsync=0; }
fi
river_ver="$(go version -m "$peers/river" 2>/dev/null | awk '$1=="mod"{print $2"@"$3} $1=="dep" && $2=="github.com/riverqueue/river"{print "(river " $3 ")"}' | tr '\n' ' ' || true)"
[ -f "$peers/river.source" ] && river_ver="$river_ver$(cat "$peers/river.source")"
nats_ver="natscli $("$peers/nats" --version 2>&1)"
server_ver="nats-server $("$peers/nats" -s "$nats_url" account info 2>/dev/null | awk -F': ' '/Connected Server Version/{print $2}' || true)"
log "== versions: $river_ver; $nats_ver; server at $nats_url: $server_ver"
log "== PostgreSQL: $(psql -Atq "$pgbase" -c 'SHOW server_version') at ${pgbase%%\?*}; QUICK=$quick"

# json STRING: a JSON string literal.
json() { jq -Rn --arg s "$1" '$s'; }
# record PEER RUN SHAPE VALUE UNIT COMMAND VERSION LOAD0 LOAD1
record() {
  printf '{"peer":%s,"run":%s,"shape":%s,"value":%s,"unit":%s,"command":%s,"version":%s,"load_before":%s,"load_after":%s}\n' \
    "$(json "$1")" "$(json "$2")" "$(json "$3")" "${4:-null}" "$(json "$5")" "$(json "$6")" "$(json "$7")" "$(json "$8")" "$(json "$9")" >>"$jsonl"
  log "   => $1 $2: ${4:-FAILED} $5"
}
load() { cut -d' ' -f1-3 /proc/loadavg; }
# number OUTPUT REGEX: the last number matched by REGEX (commas dropped).
number() { grep -oE "$2" <<<"$1" | tail -1 | grep -oE '[0-9][0-9,]*(\.[0-9]+)?' | head -1 | tr -d , || true; }
# run LABEL CMD...: runs CMD with uptime before and after into results.txt;
# its output is left in $last.
run() {
  local label="$1"; shift
  log ""
  log "== $label"
  log "\$ $*"
  log "uptime before: $(uptime)"
  set +e
  last="$(timeout "$peer_timeout" "$@" 2>&1)"
  local rc=$?
  set -e
  printf '%s\n' "$last" >>"$txt"
  log "uptime after:  $(uptime)"
  [ "$rc" = 0 ] || log "   exit status $rc"
  return 0
}

# --- River ---------------------------------------------------------------
# A fresh database, not a schema: this river bench runs `VACUUM FULL
# river_job` without its --schema, which fails in any schema but the
# search path's first.
riverdb="river_bench_$$_$RANDOM"
psql -q "$pgbase" -c "CREATE DATABASE $riverdb" >/dev/null
rurl="$(sed -E "s#^(postgres(ql)?://[^/]*/)[^?]*#\1$riverdb#" <<<"$pgbase")"
case "$rurl" in *\?*) rurl="$rurl&sslmode=disable" ;; *) rurl="$rurl?sslmode=disable" ;; esac
run "river migrate-up (fresh database $riverdb)" "$peers/river" migrate-up --database-url "$rurl"
grep -qi error <<<"$last" && log "   migrate-up reported an error (see above)"

# river_bench LABEL ARGS...: `river bench`, tried up to three times: on a
# busy machine it may give up on its own start ("timed out waiting for
# starting jobs to be inserted", a fixed 15 s), which is no figure.
river_bench() {
  local label="$1" try; shift
  for try in 1 2 3; do
    run "$label (attempt $try)" "$peers/river" bench --database-url "$rurl" "$@"
    grep -q 'timed out waiting for starting jobs' <<<"$last" || return 0
  done
}

l0="$(load)"
river_bench "river bench, burn-down: $river_jobs jobs inserted (batches of 5,000), then worked by 2,000 workers" \
  --num-total-jobs "$river_jobs"
record river burn_down "insert $river_jobs jobs, then work them all; jobs/s over the working only" \
  "$(number "$last" 'overall job/sec \[ *[0-9.]+')" "jobs/s" \
  "river bench --database-url URL --num-total-jobs $river_jobs" "$river_ver" "$l0" "$(load)"

l0="$(load)"
river_bench "river bench, continuous: insert and work for $river_duration" --duration "$river_duration"
record river continuous "insert (batches of 5,000) while 2,000 workers work, for $river_duration; jobs/s worked" \
  "$(number "$last" 'overall job/sec \[ *[0-9.]+')" "jobs/s" \
  "river bench --database-url URL --duration $river_duration" "$river_ver" "$l0" "$(load)"
psql -q "$pgbase" -c "DROP DATABASE IF EXISTS $riverdb WITH (FORCE)" >/dev/null 2>&1 || true
riverdb=""

# --- NATS ----------------------------------------------------------------
subj="bench14.$$"

# fanout URL VERSION: the subscribers start in the background; once every
# one has subscribed, one publisher sends; the subscribers' aggregate rate
# is the figure.
fanout() {
  local url="$1" ver="$2" l0 subout
  subout="$work/fanout.out"
  l0="$(load)"
  log ""
  log "== NATS core fan-out: $nats_agents subscribers on one subject, 1 publisher, $fan_msgs messages (each subscriber gets every message: our broadcast's shape, not durable)"
  log "\$ nats bench sub $subj.fan --clients $nats_agents --msgs $fan_msgs --no-progress &"
  log "\$ nats bench pub $subj.fan --clients 1 --msgs $fan_msgs --no-progress"
  log "uptime before: $(uptime)"
  timeout "$peer_timeout" "$peers/nats" -s "$url" bench sub "$subj.fan" --clients "$nats_agents" --msgs "$fan_msgs" --no-progress >"$subout" 2>&1 &
  local sp=$!
  bg+=("$sp")
  # Every subscriber logs its start; publish once all have subscribed.
  for _ in $(seq 600); do
    [ "$(grep -c 'Starting Core NATS subscriber,' "$subout" 2>/dev/null || true)" -ge "$nats_agents" ] && break
    sleep 0.1
  done
  sleep 1
  local pubout
  pubout="$(timeout "$peer_timeout" "$peers/nats" -s "$url" bench pub "$subj.fan" --clients 1 --msgs "$fan_msgs" --no-progress 2>&1 || true)"
  wait "$sp" || log "   subscribers exit status $? (core NATS drops messages to slow consumers; a subscriber that missed some never finishes)"
  grep -v 'Starting Core NATS subscriber,' "$subout" | grep -v '^  \[[0-9]*\] ' >>"$txt" || true
  printf '%s\n' "$pubout" >>"$txt"
  log "uptime after:  $(uptime)"
  local subs
  subs="$(cat "$subout")"
  record nats core_fanout_deliveries "1 publisher -> $nats_agents subscribers, $fan_msgs msgs each; deliveries/s (all subscribers)" \
    "$(number "$subs" 'aggregated stats: [0-9,]+ msgs/sec')" "msgs/s" \
    "nats bench sub S --clients $nats_agents --msgs $fan_msgs & nats bench pub S --clients 1 --msgs $fan_msgs" "$ver" "$l0" "$(load)"
  record nats core_fanout_publish "publisher side of the same run" \
    "$(number "$pubout" 'stats: [0-9,]+ msgs/sec')" "msgs/s" \
    "nats bench pub S --clients 1 --msgs $fan_msgs" "$ver" "$l0" "$(load)"
}

# direct URL VERSION: a queue group of responders, then the requesters.
direct() {
  local url="$1" ver="$2" l0 srvout
  srvout="$work/serve.out"
  l0="$(load)"
  timeout "$peer_timeout" "$peers/nats" -s "$url" bench service serve "$subj.svc" --clients "$nats_agents" --no-progress >"$srvout" 2>&1 &
  local sp=$!
  bg+=("$sp")
  for _ in $(seq 600); do
    [ "$(grep -c 'Starting Core NATS service server' "$srvout" 2>/dev/null || true)" -ge "$nats_agents" ] && break
    sleep 0.1
  done
  sleep 1
  run "NATS core request/reply: $nats_agents requesters, each waits for the reply before the next, $nats_msgs in all, each to one of $nats_agents responders (our direct messages' shape with --window 1; not durable)" \
    "$peers/nats" -s "$url" bench service request "$subj.svc" --clients "$nats_agents" --msgs "$nats_msgs" --no-progress
  kill "$sp" 2>/dev/null || true
  wait "$sp" 2>/dev/null || true
  record nats core_request_reply "$nats_agents requesters -> queue group of $nats_agents responders, one outstanding each; msgs/s" \
    "$(number "$last" 'stats: [0-9,]+ msgs/sec')" "msgs/s" \
    "nats bench service serve S --clients $nats_agents & nats bench service request S --clients $nats_agents --msgs $nats_msgs" "$ver" "$l0" "$(load)"
}

# jetstream URL VERSION LABEL: synchronous publishes (each waits for the
# stream's ack) from NATS_AGENTS clients into a file-storage stream, then a
# durable consumer shared by NATS_JS_CONSUMERS clients works them off.
jetstream() {
  local url="$1" ver="$2" label="$3" stream="bench14_${3}_$$" l0
  l0="$(load)"
  run "NATS JetStream ($label): $nats_agents clients publish synchronously (each waits for the stream's ack), $nats_msgs msgs, file storage, 1 replica" \
    "$peers/nats" -s "$url" bench js pub sync "$subj.js.$label" --stream "$stream" --create --storage file --replicas 1 --purge \
    --clients "$nats_agents" --msgs "$nats_msgs" --no-progress
  record nats "js_${label}_publish" "$nats_agents clients, synchronous publish to a file stream ($label); acked msgs/s" \
    "$(number "$last" 'stats: [0-9,]+ msgs/sec')" "msgs/s" \
    "nats bench js pub sync S --stream $stream --create --storage file --replicas 1 --purge --clients $nats_agents --msgs $nats_msgs" "$ver" "$l0" "$(load)"
  l0="$(load)"
  run "NATS JetStream ($label): durable consumer, $js_consumers clients, explicit acks, $nats_msgs msgs" \
    "$peers/nats" -s "$url" bench js consume --stream "$stream" --clients "$js_consumers" --msgs "$nats_msgs" --no-progress
  record nats "js_${label}_consume" "durable consumer shared by $js_consumers clients, explicit acks ($label); msgs/s" \
    "$(number "$last" 'stats: [0-9,]+ msgs/sec')" "msgs/s" \
    "nats bench js consume --stream $stream --clients $js_consumers --msgs $nats_msgs" "$ver" "$l0" "$(load)"
  "$peers/nats" -s "$url" stream rm "$stream" -f >/dev/null 2>&1 || true
}

fanout "$nats_url" "$nats_ver; $server_ver"
direct "$nats_url" "$nats_ver; $server_ver"
jetstream "$nats_url" "$nats_ver; $server_ver" default

if [ "$nats_fsync" = 1 ]; then
  # The shared server flushes JetStream files every 2 minutes (its default
  # sync_interval), so an ack there is not an fsync; ours is. This private
  # server fsyncs before every ack.
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/js"
  printf 'listen: 127.0.0.1:%s\njetstream { store_dir: "%s", sync_interval: always }\n' "$port" "$work/js" >"$work/nats.conf"
  "$peers/nats-server" -c "$work/nats.conf" >"$work/nats-server.log" 2>&1 &
  bg+=($!)
  for _ in $(seq 100); do "$peers/nats" -s "nats://127.0.0.1:$port" account info >/dev/null 2>&1 && break; sleep 0.1; done
  fsver="$("$peers/nats-server" --version) (private, sync_interval: always, store on $(df -P "$work" | awk 'NR==2{print $1}'))"
  log ""
  log "== private server: $fsver at nats://127.0.0.1:$port"
  jetstream "nats://127.0.0.1:$port" "$nats_ver; $fsver" fsync
fi

log ""
log "== peers done; figures in $jsonl"
