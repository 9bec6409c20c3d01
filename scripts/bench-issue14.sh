#!/usr/bin/env bash
# bench-issue14.sh BEFORE AFTER OUTDIR: every figure of issue 14's
# table, the same commands for both binaries, on the embedded store (bbolt:
# the load tool's in-process hub) and on PostgreSQL (a child `agentcom
# serve --store postgres://...` on a fresh schema, driven with --hub), then
# the peers (scripts/bench-peers.sh) in the same session, then a summary.
#
#   scripts/bench-issue14.sh 085056f HEAD /tmp/issue14
#
# BEFORE and AFTER are agentcom binaries, or git revisions to build
# (scripts/build-rev.sh, into OUTDIR/bin).
#
# OUTDIR/<before|after>/<bolt|postgres>/<target>.json is `agentcom bench
# --json` of one run (.err its stderr); OUTDIR/runs.log has every command
# with `uptime` before and after; OUTDIR/summary.md is the table
# (scripts/bench-summary.sh OUTDIR rebuilds it).
#
# Sizes (QUICK=1 shrinks all of them to a smoke test of a few minutes; any
# one can be set alone):
#   TASKS_AGENTS 100  TASKS 20000  TASK_SAMPLES 500   tasks end to end (--batch 100 too
#                                            when the binary has the flag)
#   LAT_AGENTS 1000   LAT_SAMPLES 1000  LAT_TASKS 20000 (as in BENCHMARKS.md)
#                                            submit -> task_assign, agents idle
#   MSG_AGENTS 1000   MESSAGES 20000         direct messages, durable
#   BC_AGENTS 1000    BROADCASTS 50          broadcast, time until all have it
#   IDLE_SMALL 2000   idle_small: both binaries (the like-for-like pair)
#   IDLE_AGENTS 10000 idle: the after binary only, unless IDLE_BEFORE_FULL=1
#                     (the before binary connects 10,000 in ~12 min:
#                     quadratic)
#   IDLE_HOLD 30s     how long each idle run holds its connections
#   STORAGE_RECORDS 100000                   writer stall during a backup
#   RESTART_RECORDS 1000000  RESTART_KIND ended-tasks
#                                            restart until serving (bolt)
#   RESTART_LIVE_RECORDS 10000               the same over queued (live) tasks:
#                                            the load tool's fill submits them
#                                            all as one submitter, whose quota
#                                            (10,000) stops it beyond that
# Selection:
#   TARGETS  "tasks tasks_batch latency messages broadcast idle_small idle storage restart restart_live"
#   STORES   "bolt postgres"     BINS "before after"
#   PEERS    1 (0: skip bench-peers.sh; its own variables apply, QUICK too)
#   BENCH_TIMEOUT  cap per scenario [30m]
#   AGENTCOM_BENCH_PG  [postgres://postgres@127.0.0.1:5432/test]
# Storage and restart run on bolt only: the load tool builds their store
# itself (with --hub it would still measure a local bbolt store).
set -euo pipefail
shopt -s inherit_errexit
usage="usage: bench-issue14.sh BEFORE_BIN|REV AFTER_BIN|REV OUTDIR"
out="${3:?$usage}"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$out"
# binary ARG NAME: ARG when it is an executable, else cmd/agentcom built at
# git revision ARG into OUTDIR/bin/NAME.
binary() {
  if [ -f "$1" ] && [ -x "$1" ]; then realpath "$1"; return; fi
  mkdir -p "$out/bin"
  "$here/build-rev.sh" "$1" "$out/bin/$2" >&2
  realpath "$out/bin/$2"
}
before_bin="$(binary "${1:?$usage}" agentcom-before)"
after_bin="$(binary "${2:?$usage}" agentcom-after)"
quick="${QUICK:-0}"
q() { if [ "$quick" = 1 ]; then echo "$2"; else echo "$1"; fi; }
TASKS_AGENTS="${TASKS_AGENTS:-100}";           TASKS="${TASKS:-$(q 20000 2000)}"; TASK_SAMPLES="${TASK_SAMPLES:-$(q 500 100)}"
LAT_AGENTS="${LAT_AGENTS:-$(q 1000 200)}";     LAT_SAMPLES="${LAT_SAMPLES:-$(q 1000 200)}"; LAT_TASKS="${LAT_TASKS:-$(q 20000 200)}"
MSG_AGENTS="${MSG_AGENTS:-$(q 1000 200)}";     MESSAGES="${MESSAGES:-$(q 20000 2000)}"
BC_AGENTS="${BC_AGENTS:-$(q 1000 200)}";       BROADCASTS="${BROADCASTS:-$(q 50 10)}"
IDLE_AGENTS="${IDLE_AGENTS:-$(q 10000 500)}";  IDLE_SMALL="${IDLE_SMALL:-$(q 2000 200)}"; IDLE_HOLD="${IDLE_HOLD:-$(q 30s 5s)}"
IDLE_BEFORE_FULL="${IDLE_BEFORE_FULL:-0}"
STORAGE_RECORDS="${STORAGE_RECORDS:-$(q 100000 10000)}"
RESTART_RECORDS="${RESTART_RECORDS:-$(q 1000000 20000)}"; RESTART_KIND="${RESTART_KIND:-ended-tasks}"
RESTART_LIVE_RECORDS="${RESTART_LIVE_RECORDS:-$(q 10000 5000)}"
TARGETS="${TARGETS:-tasks tasks_batch latency messages broadcast idle_small idle storage restart restart_live}"
STORES="${STORES:-bolt postgres}"
BINS="${BINS:-before after}"
PEERS="${PEERS:-1}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-30m}"
pgbase="${AGENTCOM_BENCH_PG:-postgres://postgres@127.0.0.1:5432/test}"

mkdir -p "$out"
out="$(realpath "$out")"
runs="$out/runs.log"
work="$(mktemp -d)"
hub_pid="" schema="" sampler=""
stop_hub() {
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; sampler=""; fi
  if [ -n "$hub_pid" ]; then kill "$hub_pid" 2>/dev/null || true; wait "$hub_pid" 2>/dev/null || true; hub_pid=""; fi
  if [ -n "$schema" ]; then psql -q "$pgbase" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; schema=""; fi
}
trap 'stop_hub; rm -rf "$work"' EXIT
# 10,000 agents hold 10,000 sockets in the load tool and as many in the hub.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
log() { echo "$*" | tee -a "$runs"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# args BIN WHICH TARGET: the bench arguments of one target ("" when BIN
# does not run it: tasks_batch where there is no --batch, idle for the
# before binary unless IDLE_BEFORE_FULL=1). The same for both binaries.
args() {
  local bin="$1" which="$2"
  case "$3" in
  tasks) echo "--scenario tasks --agents $TASKS_AGENTS --tasks $TASKS --samples $TASK_SAMPLES" ;;
  tasks_batch)
    # The help is read whole first: grep -q stopping at its first match
    # would end `bench --help` with SIGPIPE, which pipefail reports as
    # the flag missing.
    local help
    help="$("$bin" bench --help 2>&1 || true)"
    if grep -q -- '--batch' <<<"$help"; then
      echo "--scenario tasks --agents $TASKS_AGENTS --tasks $TASKS --samples $TASK_SAMPLES --batch 100"
    fi ;;
  latency) echo "--scenario tasks --agents $LAT_AGENTS --tasks $LAT_TASKS --samples $LAT_SAMPLES" ;;
  messages) echo "--scenario messages --agents $MSG_AGENTS --messages $MESSAGES" ;;
  broadcast) echo "--scenario broadcast --agents $BC_AGENTS --broadcasts $BROADCASTS" ;;
  idle_small) echo "--scenario idle --agents $IDLE_SMALL --duration $IDLE_HOLD" ;;
  idle)
    if [ "$which" = after ] || [ "$IDLE_BEFORE_FULL" = 1 ]; then
      echo "--scenario idle --agents $IDLE_AGENTS --duration $IDLE_HOLD"
    fi ;;
  storage) echo "--scenario storage --storage-records $STORAGE_RECORDS" ;;
  restart) echo "--scenario restart --records $RESTART_RECORDS --record-kind $RESTART_KIND" ;;
  restart_live) echo "--scenario restart --records $RESTART_LIVE_RECORDS --record-kind tasks" ;;
  esac
}

# start_pg_hub BIN: a hub on a fresh schema; sets hub_url, token, hub_pid.
start_pg_hub() {
  local bin="$1" port url
  schema="bench14_$$_$RANDOM"
  psql -q "$pgbase" -c "CREATE SCHEMA $schema" >/dev/null
  case "$pgbase" in *\?*) url="$pgbase&sslmode=disable&search_path=$schema" ;; *) url="$pgbase?sslmode=disable&search_path=$schema" ;; esac
  token="$("$bin" token create --store "$url" --agent bench-ops --admin --json | jq -r .token)"
  port="$(free_port)"
  hub_url="http://127.0.0.1:$port"
  # The flags the load tool gives the hubs it starts itself.
  "$bin" serve --store "$url" --addr "127.0.0.1:$port" --advertise "$hub_url" --hub-id bench14 \
    --data "$work/data-$schema" --rate-limits off --max-queued-per-submitter 1000000 \
    --log-level warn >"$work/hub-$schema.log" 2>&1 &
  hub_pid=$!
  for _ in $(seq 150); do curl -fs "$hub_url/health" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "hub on PostgreSQL did not come up:"; cat "$work/hub-$schema.log" | tee -a "$runs"
  return 1
}

# rss_sampler PID FILE: the hub's RSS (KB) at start and its peak, every
# 0.5 s, rewritten into FILE as JSON; the load tool cannot read the memory
# of a hub it drives with --hub.
rss_sampler() {
  local pid="$1" file="$2" base peak cur
  base="$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")"
  peak="$base"
  while kill -0 "$pid" 2>/dev/null; do
    cur="$(awk '/^VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)"
    [ "${cur:-0}" -gt "$peak" ] && peak="$cur"
    printf '{"hub_pid":%s,"rss_before_kb":%s,"rss_peak_kb":%s,"rss_last_kb":%s}\n' "$pid" "$base" "$peak" "${cur:-0}" >"$file.tmp"
    mv "$file.tmp" "$file"
    sleep 0.5
  done
}

run_one() {
  local which="$1" store="$2" target="$3" bin a dir
  bin="$before_bin"; [ "$which" = after ] && bin="$after_bin"
  a="$(args "$bin" "$which" "$target")"
  if [ -z "$a" ]; then
    case "$target" in
    tasks_batch) log "-- $which/$store/$target: skipped, $bin bench has no --batch" ;;
    *) log "-- $which/$store/$target: skipped, the before binary's $IDLE_AGENTS-agent run is optional (IDLE_BEFORE_FULL=1)" ;;
    esac
    return 0
  fi
  if [ "$store" = postgres ] && { [ "$target" = storage ] || [ "${target%_live}" = restart ]; }; then
    log "-- $which/$store/$target: bolt only (the load tool builds this store itself)"; return 0
  fi
  dir="$out/$which/$store"
  mkdir -p "$dir"
  local hubargs=()
  if [ "$store" = postgres ]; then
    start_pg_hub "$bin" || return 0
    hubargs=(--hub "$hub_url")
    if [ "${target%_small}" = idle ]; then
      rss_sampler "$hub_pid" "$dir/$target.rss.json" &
      sampler=$!
    fi
  fi
  log ""
  log "== $which/$store/$target  ($(date -u +%H:%M:%S) UTC)"
  log "\$ agentcom bench --json --quiet --timeout $BENCH_TIMEOUT $a ${hubargs[*]}   # agentcom = $bin"
  log "uptime before: $(uptime)"
  local t0 rc=0
  t0=$(date +%s)
  # shellcheck disable=SC2086 # a is a list of words
  AGENTCOM_TOKEN="${token:-}" "$bin" bench --json --quiet --timeout "$BENCH_TIMEOUT" $a "${hubargs[@]}" \
    >"$dir/$target.json" 2>"$dir/$target.err" || rc=$?
  log "uptime after:  $(uptime)   ($(( $(date +%s) - t0 )) s, exit $rc)"
  [ "$rc" = 0 ] || tail -3 "$dir/$target.err" | sed 's/^/   /' | tee -a "$runs"
  if [ "$store" = postgres ]; then stop_hub; fi
  return 0
}

start=$(date +%s)
log "== issue 14 bench, $(date -u '+%Y-%m-%d %H:%M:%S') UTC, QUICK=$quick, $(nproc) CPUs"
# rev ARG: the commit ARG names, when it is a revision.
rev() { [ -f "$1" ] || git rev-parse --short "$1^{commit}" 2>/dev/null || true; }
log "before: $1 $(rev "$1") = $before_bin ($("$before_bin" version 2>/dev/null | head -1 || true))"
log "after:  $2 $(rev "$2") = $after_bin ($("$after_bin" version 2>/dev/null | head -1 || true))"
log "targets: $TARGETS; stores: $STORES; PostgreSQL: ${pgbase%%\?*} ($(psql -Atq "$pgbase" -c 'SHOW server_version'))"
log "sizes: tasks $TASKS_AGENTS/$TASKS; latency $LAT_AGENTS agents $LAT_SAMPLES samples; messages $MSG_AGENTS/$MESSAGES; broadcast $BC_AGENTS/$BROADCASTS; idle $IDLE_SMALL and $IDLE_AGENTS (before too: $IDLE_BEFORE_FULL) hold $IDLE_HOLD; storage $STORAGE_RECORDS; restart $RESTART_RECORDS $RESTART_KIND, $RESTART_LIVE_RECORDS tasks"
# Before and after alternate per target, so that a change in the machine's
# load hits both sides of a pair alike.
for store in $STORES; do
  for target in $TARGETS; do
    for which in $BINS; do
      run_one "$which" "$store" "$target"
    done
  done
done
ours=$(( $(date +%s) - start ))
log ""
log "== ours done in $ours s"
if [ "$PEERS" = 1 ]; then
  "$here/bench-peers.sh" "$out" || log "bench-peers.sh failed (exit $?)"
fi
"$here/bench-summary.sh" "$out" >"$out/summary.md" || log "bench-summary.sh failed (exit $?)"
log "== all done in $(( $(date +%s) - start )) s; summary: $out/summary.md"
cat "$out/summary.md"
