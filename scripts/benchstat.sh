#!/usr/bin/env bash
# benchstat.sh BEFORE_REV AFTER_REV [OUTDIR]: the hot paths' Go benchmarks
# at two revisions, compared with benchstat (issue 14).
#
#   scripts/benchstat.sh 085056f HEAD            # AFTER_REV "." = this work tree, uncommitted changes included
#
# Each revision is checked out in a git worktree under /tmp; each package's
# test binary is built once per revision, then the two revisions' binaries
# run in turn, one -count at a time (before, after, before, ...), so that
# the machine's load drifts over both alike. A package or benchmark missing
# at one revision is simply absent from that side of the comparison.
#
# OUTDIR (default /tmp/benchstat-BEFORE-AFTER) gets before.txt, after.txt,
# benchstat.txt, uptime.txt and timing.txt (seconds per package and round:
# where to cut -benchtime or the pattern when the run is too long).
#
# Environment: COUNT [6], BENCHTIME [300ms] (a package's own in the list
# below wins), BENCHSTAT [/tmp/peers/benchstat, installed when missing],
# PACKAGES (overrides the list below). At 085056f one round (both sides) of
# the listed packages took ~150 s at -benchtime 100ms with the load average
# at 13, most of it the benchmarks' set-up (tables filled, hubs started):
# COUNT 6 at 300ms is about 10 minutes on a quiet machine and twice that
# on a busy one; timing.txt says which package to trim.
set -euo pipefail
shopt -s inherit_errexit
before_rev="${1:?usage: benchstat.sh BEFORE_REV AFTER_REV [OUTDIR]}"
after_rev="${2:?usage: benchstat.sh BEFORE_REV AFTER_REV [OUTDIR]}"
# The repository is the current directory's (the script may run from a copy).
root="$(git rev-parse --show-toplevel 2>/dev/null || (cd "$(dirname "$0")/.." && pwd))"
count="${COUNT:-6}"
benchtime="${BENCHTIME:-300ms}"
benchstat="${BENCHSTAT:-/tmp/peers/benchstat}"
benchstat_version="v0.0.0-20260908200009-22c9c6c9d4da"

# The hot paths' benchmark packages, with the -bench pattern of each and,
# optionally, a -benchtime of its own (e.g. 3x for benchmarks of a second
# per op): the one place to add a package.
PACKAGES="${PACKAGES:-
internal/tasks              .
internal/scheduler          .
internal/messaging          .
internal/agentws            .
internal/store              .
internal/storage/pgdriver   .
internal/sendq              .
internal/wsconn             .
internal/presence           .
internal/auth               .
}"

tag() { git -C "$root" rev-parse --short "$1" 2>/dev/null || echo "$1"; }
bname="$( [ "$before_rev" = . ] && echo worktree || tag "$before_rev")"
aname="$( [ "$after_rev" = . ] && echo worktree || tag "$after_rev")"
out="${3:-/tmp/benchstat-$bname-$aname}"
mkdir -p "$out"
out="$(realpath "$out")"
work="$(mktemp -d /tmp/benchstat.XXXXXX)"
trees=()
cleanup() {
  for t in "${trees[@]}"; do git -C "$root" worktree remove --force "$t" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

if [ ! -x "$benchstat" ]; then
  GOBIN="$(dirname "$benchstat")" go install "golang.org/x/perf/cmd/benchstat@$benchstat_version"
fi

# checkout REV NAME: the directory holding REV's tree.
checkout() {
  if [ "$1" = . ]; then echo "$root"; return; fi
  local dir="$work/$2"
  git -C "$root" worktree add --detach "$dir" "$1" >/dev/null 2>&1
  trees+=("$dir")
  echo "$dir"
}
bdir="$(checkout "$before_rev" before)"
adir="$(checkout "$after_rev" after)"

# build SIDE DIR: a test binary per package that exists there and has
# benchmarks, listed in $work/SIDE.list as "pkgdir binary pattern".
build() {
  local side="$1" dir="$2" pkg pat bt
  : >"$work/$side.list"
  while read -r pkg pat bt; do
    [ -n "$pkg" ] || continue
    if ! grep -qs '^func Benchmark' "$dir/$pkg"/*_test.go; then
      echo "   $side: $pkg has no benchmarks here" >&2
      continue
    fi
    local bin="$work/$side-${pkg//\//_}.test"
    if (cd "$dir" && go test -c -o "$bin" "./$pkg") >"$work/$side-build.log" 2>&1; then
      echo "$dir/$pkg $bin $pat ${bt:-$benchtime}" >>"$work/$side.list"
    else
      echo "   $side: $pkg does not build:" >&2
      tail -5 "$work/$side-build.log" >&2
    fi
  done <<<"$PACKAGES"
}
echo "== building test binaries: before $before_rev ($bdir), after $after_rev ($adir)"
build before "$bdir"
build after "$adir"
if [ ! -s "$work/before.list" ] && [ ! -s "$work/after.list" ]; then
  echo "no benchmark package builds at either revision" >&2
  exit 1
fi
: >"$work/before.raw"
: >"$work/after.raw"

: >"$out/before.txt"
: >"$out/after.txt"
: >"$out/timing.txt"
{ echo "start: $(date -u '+%F %T') UTC; $(uptime)"; echo "count $count, benchtime $benchtime"; cat "$work/before.list" "$work/after.list"; } >"$out/uptime.txt"
start=$(date +%s)
for i in $(seq "$count"); do
  for side in before after; do
    while read -r pdir bin pat bt; do
      local_t0=$(date +%s)
      # The package directory is the working directory, as under go test.
      (cd "$pdir" && "$bin" -test.run '^$' -test.bench "$pat" -test.benchtime "$bt" -test.count 1 -test.benchmem) \
        >>"$work/$side.raw" 2>&1 || echo "   $side: $(basename "$bin") exit $? (round $i)" >&2
      echo "round $i $side ${pdir##*/} $(( $(date +%s) - local_t0 )) s" >>"$out/timing.txt"
    done <"$work/$side.list"
  done
  echo "   round $i/$count done, $(( $(date +%s) - start )) s; $(uptime)" | tee -a "$out/uptime.txt"
done
# benchstat wants the goos/pkg headers and Benchmark lines only.
grep -E '^(goos|goarch|pkg|cpu|Benchmark)' "$work/before.raw" >"$out/before.txt" || true
grep -E '^(goos|goarch|pkg|cpu|Benchmark)' "$work/after.raw" >"$out/after.txt" || true
grep -E '^(--- FAIL|FAIL|panic)' "$work/before.raw" "$work/after.raw" | sort -u | head -20 >&2 || true
echo "end: $(date -u '+%F %T') UTC; $(uptime)" >>"$out/uptime.txt"

echo "== benchstat before=$before_rev after=$after_rev ($(( $(date +%s) - start )) s of benchmarks)"
"$benchstat" before="$out/before.txt" after="$out/after.txt" | tee "$out/benchstat.txt"
cat "$out/uptime.txt"
