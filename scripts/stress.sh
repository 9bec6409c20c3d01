#!/usr/bin/env bash
# Stress run: the timing-sensitive packages, each test N times (default 5)
# under -race, while a second test run keeps the machine busy. Tests that
# synchronise on events stay green; one that hides a fixed window fails
# here first. Usage: scripts/stress.sh [count]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
count="${1:-5}"
# Packages whose tests run hubs, sockets, timers and child processes.
pkgs=(./internal/hub ./internal/scheduler ./internal/sidecar ./internal/dashboard
  ./internal/agents ./internal/agentws ./internal/messaging ./cmd/agentcom)
# The load: other packages' tests, over and over, until the run ends.
load=(./internal/store ./internal/resilience ./internal/tasks ./internal/bench)

go test -race -count=1 -run '^$' "${pkgs[@]}" "${load[@]}" >/dev/null # build once
setsid bash -c 'while :; do go test -race -count=1 "$@" >/dev/null 2>&1 || true; done' load "${load[@]}" &
loader=$!
trap 'kill -- -"$loader" 2>/dev/null || true' EXIT
echo "stress: ${pkgs[*]} x$count under -race, loaded by ${load[*]}"
go test -race -count="$count" -timeout 60m "${pkgs[@]}"
