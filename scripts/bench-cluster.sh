#!/usr/bin/env bash
# bench-cluster.sh: the task and message figures of BENCHMARKS.md's
# "Storage drivers and clusters" section, on hubs this script starts.
#
#   scripts/bench-cluster.sh bolt             one hub, embedded store
#   scripts/bench-cluster.sh postgres 1       one hub on PostgreSQL
#   scripts/bench-cluster.sh postgres 3 [BUS] three hubs on one PostgreSQL
#                                             (BUS: postgres (default) or nats://host:4222)
#
# PostgreSQL: AGENTCOM_BENCH_PG (default postgres://postgres@127.0.0.1:5432/test),
# a fresh schema per run, dropped at the end. Extra arguments after the
# bus go to every `agentcom bench` (e.g. --agents 100 --tasks 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
store="${1:-bolt}"; hubs="${2:-1}"; bus="${3:-postgres}"; shift $(( $# < 3 ? $# : 3 ))
extra=("$@")
work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${schema:-}" ]; then psql -q "$pgbase" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/agentcom" ./cmd/agentcom
bin="$work/agentcom"
tasks_args=(--scenario tasks --agents 30 --tasks 2000 --samples 200)
msgs_args=(--scenario messages --agents 30 --messages 4000)

if [ "$store" = bolt ]; then
  echo "== one hub, embedded store (in-process hub, as every BENCHMARKS.md figure)"
  uptime
  "$bin" bench --quiet "${tasks_args[@]}" "${extra[@]}"
  "$bin" bench --quiet "${msgs_args[@]}" "${extra[@]}"
  uptime
  exit 0
fi

pgbase="${AGENTCOM_BENCH_PG:-postgres://postgres@127.0.0.1:5432/test}"
schema="bench_$$_$RANDOM"
psql -q "$pgbase" -c "CREATE SCHEMA $schema" >/dev/null
url="$pgbase?sslmode=disable&search_path=$schema"
token="$("$bin" token create --store "$url" --agent bench-ops --admin --json | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p')"
urls=()
for i in $(seq 0 $((hubs - 1))); do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  busflag=()
  [ "$hubs" -gt 1 ] && busflag=(--bus "$bus")
  "$bin" serve --store "$url" "${busflag[@]}" --addr "127.0.0.1:$port" --advertise "http://127.0.0.1:$port" \
    --hub-id "bench-$i" --data "$work/data$i" --rate-limits off --log-level warn >"$work/hub$i.log" 2>&1 &
  pids+=($!)
  urls+=("http://127.0.0.1:$port")
done
for u in "${urls[@]}"; do
  for _ in $(seq 100); do curl -fs "$u/health" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -fs "$u/health" >/dev/null || { echo "hub at $u did not come up"; cat "$work"/hub*.log; exit 1; }
done
hublist="$(IFS=,; echo "${urls[*]}")"
echo "== $hubs hub(s) on PostgreSQL${busflag:+ (bus: $bus)}: $hublist"
uptime
AGENTCOM_TOKEN="$token" "$bin" bench --quiet --hub "$hublist" "${tasks_args[@]}" "${extra[@]}"
AGENTCOM_TOKEN="$token" "$bin" bench --quiet --hub "$hublist" "${msgs_args[@]}" "${extra[@]}"
uptime
