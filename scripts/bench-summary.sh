#!/usr/bin/env bash
# bench-summary.sh OUTDIR: the markdown table of an OUTDIR written by
# scripts/bench-issue14.sh (and scripts/bench-peers.sh), on stdout.
# Every cell is one `agentcom bench --json` figure with the 1-minute load
# average at the scenario's start and end; a failed run shows its error.
set -euo pipefail
shopt -s inherit_errexit
out="${1:?usage: bench-summary.sh OUTDIR}"
command -v jq >/dev/null || { echo "bench-summary.sh needs jq" >&2; exit 1; }

# fig FILE NAME: the figure's value ("" when absent).
fig() {
  [ -s "$1" ] || return 0
  jq -r --arg n "$2" '[.scenarios[0].figures[]? | select(.name == $n) | .value][0] // empty' "$1" 2>/dev/null || true
}
# fmt VALUE: thousands separators above 100, one decimal below.
fmt() {
  [ -n "$1" ] || { echo ""; return; }
  awk -v v="$1" 'BEGIN{ if (v >= 100) { s = sprintf("%.0f", v); o = ""; while (length(s) > 3) { o = "," substr(s, length(s)-2) o; s = substr(s, 1, length(s)-3) } print s o } else printf "%.1f\n", v }'
}
# cell WHICH STORE TARGET NAME [per-connection]: "value (load a→b)".
cell() {
  local f="$out/$1/$2/$3.json" v err l
  case "$2/$3" in postgres/storage | postgres/restart*) echo "n/a (bolt only)"; return ;; esac
  if [ ! -s "$f" ]; then
    if [ -s "$out/$1/$2/$3.err" ]; then echo "failed: $(tail -1 "$out/$1/$2/$3.err" | cut -c1-60)"; else echo "–"; fi
    return
  fi
  err="$(jq -r '.scenarios[0].error // empty' "$f" 2>/dev/null || true)"
  if [ "${5:-}" = rss ] && [ "$2" = postgres ]; then
    # The hub ran as a child the load tool could not measure; the script
    # sampled its RSS (rss_sampler in bench-issue14.sh).
    local r="$out/$1/$2/$3.rss.json" open
    open="$(fig "$f" connections_open)"
    if [ -s "$r" ] && [ -n "$open" ] && [ "${open%.*}" -gt 0 ]; then
      v="$(jq -r --argjson n "$open" '(.rss_peak_kb - .rss_before_kb) / $n' "$r")"
    else v=""; fi
  else
    v="$(fig "$f" "$4")"
  fi
  l="$(jq -r '"\(.load_avg_start | split(" ")[0])→\(.load_avg_end | split(" ")[0])"' "$f" 2>/dev/null || echo "?")"
  if [ -n "$err" ] && [ -z "$v" ]; then echo "error: ${err:0:60}"; return; fi
  echo "$(fmt "$v")${err:+ (error)} (load $l)"
}
# param TARGET KEY [WHICH]: a run parameter (e.g. agents) from the first
# run of TARGET found (after before before, bolt before PostgreSQL).
param() {
  local w s f
  for w in ${3:-after before}; do
    for s in bolt postgres; do
      f="$out/$w/$s/$1.json"
      if [ -s "$f" ]; then jq -r --arg k "$2" '.scenarios[0].params[$k] // empty' "$f" 2>/dev/null || true; return; fi
    done
  done
}

echo "## Issue 14 figures ($(date -u -r "$out/runs.log" '+%Y-%m-%d %H:%M UTC' 2>/dev/null || date -u '+%Y-%m-%d %H:%M UTC'))"
echo
head -5 "$out/runs.log" 2>/dev/null | sed 's/^/    /'
echo
echo "| figure (unit) | target | before, bolt | after, bolt | before, PostgreSQL | after, PostgreSQL |"
echo "|---|---|---|---|---|---|"
row() { # LABEL TARGET SCENARIO FIGURE [rss]
  echo "| $1 | $2 | $(cell before bolt "$3" "$4" "${5:-}") | $(cell after bolt "$3" "$4" "${5:-}") | $(cell before postgres "$3" "$4" "${5:-}") | $(cell after postgres "$3" "$4" "${5:-}") |"
}
row "tasks end to end, one submit per request (tasks/s)" "≥ 8,000" tasks throughput
row "tasks end to end, --batch 100 (tasks/s)" "≥ 15,000" tasks_batch throughput
row "submit → task_assign p99, idle agents (ms)" "≤ 2" latency idle_submit_to_assign_p99
row "direct messages delivered, durable (msg/s)" "≥ 50,000" messages delivered
row "broadcast, time until all have it, p99 (ms)" "≤ 15" broadcast all_received_p99
row "broadcast, per receiver p99 (ms)" "" broadcast per_receiver_p99
row "connecting $(param idle_small agents) idle agents (s)" "linear" idle_small connect_all
row "hub RSS per idle connection, $(param idle_small agents) agents (KB)" "≤ 30" idle_small rss_per_connection rss
row "connecting $(param idle agents) idle agents (s)" "≤ 20 for 10,000" idle connect_all
row "hub RSS per idle connection, $(param idle agents) agents (KB)" "≤ 30" idle rss_per_connection rss
row "writer stall during a backup (ms)" "≤ 10" storage backup_writer_stall
row "restart until serving, ended tasks stored (ms)" "≤ 2,000 for 1M" restart until_serving
row "restart until serving, queued tasks stored (ms)" "≤ 2,000 for 1M" restart_live until_serving
row "restart until ready (/health 200), ended tasks stored (ms)" "" restart until_ready
row "restart until ready (/health 200), queued tasks stored (ms)" "" restart_live until_ready
echo
echo "Run sizes: tasks $(param tasks agents) agents, $(param tasks tasks) tasks;" \
  "latency $(param latency agents) agents, $(param latency samples) samples;" \
  "messages $(param messages agents) agents, $(param messages messages) messages;" \
  "broadcast $(param broadcast receivers) receivers, $(param broadcast broadcasts) broadcasts;" \
  "idle $(param idle_small agents) and $(param idle agents) agents, hold $(param idle hold);" \
  "storage $(param storage records) records; restart $(param restart records) $(param restart kind), $(param restart_live records) $(param restart_live kind)."
echo "Per-connection RSS on PostgreSQL: the hub's peak RSS during the hold minus its RSS before, over the connections open (sampled every 0.5 s by the script); on bolt the load tool's own figure (final RSS)."

peers="$out/peers/results.jsonl"
if [ -s "$peers" ]; then
  echo
  echo "### Beside the peers (same session)"
  echo
  echo "| peer run | shape | figure | load (1 min) before → after |"
  echo "|---|---|---|---|"
  jq -r '"| \(.peer) \(.run) | \(.shape) | \(if .value == null then "failed" else (.value|tostring) + " " + .unit end) | \(.load_before|split(" ")[0]) → \(.load_after|split(" ")[0]) |"' "$peers"
  echo
  # ratio OURS_LABEL OURS_VALUE PEER RUN
  ratio() {
    local p
    p="$(jq -r --arg p "$3" --arg r "$4" 'select(.peer == $p and .run == $r) | .value // empty' "$peers" | head -1)"
    if [ -n "$2" ] && [ -n "$p" ]; then
      awk -v o="$2" -v p="$p" -v l="$1" -v n="$3 $4" 'BEGIN{ printf "- %s: %.0f vs %s %.0f = %.2f×\n", l, o, n, p, (p > 0 ? o / p : 0) }'
    fi
  }
  echo "Ratios (ours ÷ peer):"
  for s in bolt postgres; do
    ratio "after, $s, tasks/s one submit per request" "$(fig "$out/after/$s/tasks.json" throughput)" river continuous
    ratio "after, $s, tasks/s --batch 100" "$(fig "$out/after/$s/tasks_batch.json" throughput)" river continuous
    ratio "after, $s, durable direct msg/s" "$(fig "$out/after/$s/messages.json" delivered)" nats js_fsync_publish
    ratio "after, $s, durable direct msg/s" "$(fig "$out/after/$s/messages.json" delivered)" nats js_default_publish
    ratio "after, $s, direct msg/s (vs NATS core, not durable)" "$(fig "$out/after/$s/messages.json" delivered)" nats core_request_reply
  done
  echo
  echo "How each peer ran: $out/peers/results.txt (commands, versions, uptime)."
fi
