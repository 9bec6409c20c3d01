#!/usr/bin/env bash
# build-rev.sh REV OUT: builds cmd/agentcom at git revision REV into OUT
# (e.g. the "before" binary of issue 14: scripts/build-rev.sh 085056f
# /tmp/agentcom-before), from a temporary worktree that is then removed.
set -euo pipefail
shopt -s inherit_errexit
rev="${1:?usage: build-rev.sh REV OUT}"
out="${2:?usage: build-rev.sh REV OUT}"
# The repository is the current directory's (the script may run from a copy).
root="$(git rev-parse --show-toplevel 2>/dev/null || (cd "$(dirname "$0")/.." && pwd))"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
dir="$(mktemp -d /tmp/build-rev.XXXXXX)"
trap 'git -C "$root" worktree remove --force "$dir/src" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
git -C "$root" worktree add --detach "$dir/src" "$rev" >/dev/null
(cd "$dir/src" && go build -o "$out" ./cmd/agentcom)
echo "$out: cmd/agentcom at $(git -C "$root" rev-parse --short "$rev")"
