#!/usr/bin/env bash
# Runs every Fuzz target in the module for a short time each.
# usage: scripts/fuzz.sh [duration]   (default 10s)
set -euo pipefail
cd "$(dirname "$0")/.."
dur="${1:-10s}"
for pkg in $(go list ./...); do
  dir="$(go list -f '{{.Dir}}' "$pkg")"
  for fz in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz $pkg $fz ($dur)"
    go test -run='^$' -fuzz="^${fz}\$" -fuzztime="$dur" "$pkg" >/dev/null
  done
done
