#!/usr/bin/env bash
# Replays editing traces into the interlude text CRDT, Yjs and Loro, each run
# in its own process, and prints the results as one Markdown table.
#
# Usage: bench/compare.sh [TRACE...]
#   TRACE is a trace file, or a name such as seph-blog1 that is looked up as
#   $SHARED/traces/NAME.json.gz. SHARED defaults to ../shared and a relative
#   SHARED is taken from the repository root. Without arguments it runs
#   automerge-paper and seph-blog1.
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$bench_dir")"
shared="${SHARED:-../shared}"
case "$shared" in
  /*) ;;
  *) shared="$root/$shared" ;;
esac
if [ -d "$shared" ]; then
  shared="$(cd "$shared" && pwd)"
fi

if [ "$#" -eq 0 ]; then
  set -- automerge-paper seph-blog1
fi

# Resolve every trace before running anything, so a typo fails fast.
traces=()
for arg in "$@"; do
  if [ -f "$arg" ]; then
    traces+=("$(cd "$(dirname "$arg")" && pwd)/$(basename "$arg")")
  elif [ -f "$shared/traces/$arg.json.gz" ]; then
    traces+=("$shared/traces/$arg.json.gz")
  else
    echo "compare.sh: trace $arg not found: give a file or a name in $shared/traces (set SHARED to move it)" >&2
    exit 2
  fi
done

if [ ! -d "$bench_dir/node_modules" ]; then
  echo "compare.sh: installing the pinned Yjs and Loro with npm ci" >&2
  (cd "$bench_dir" && npm ci --no-audit --no-fund >&2)
fi

results="$(mktemp)"
errors="$(mktemp)"
trap 'rm -f "$results" "$errors"' EXIT
failed=0

# run_one LABEL TRACE COMMAND... appends "LABEL<tab>JSON" to $results for
# the JSON line that COMMAND prints last. A command that exits non-zero is
# reported and counted, and the remaining runs still go ahead.
run_one() {
  local label="$1" trace="$2"
  shift 2
  local output status=0
  echo "compare.sh: $label on $(basename "$trace")" >&2
  output="$("$@" 2>"$errors")" || status=$?
  local last="${output##*$'\n'}"
  if [ "${last:0:1}" = "{" ]; then
    printf '%s\t%s\n' "$label" "$last" >>"$results"
  fi
  if [ "$status" -eq 0 ]; then
    return 0
  fi
  if grep -q 'unknown command' "$errors"; then
    echo "skipped: $label on $(basename "$trace"): this build has no 'interlude bench crdt' yet"
    return 0
  fi
  echo "compare.sh: $label failed on $trace (exit status $status):" >&2
  cat "$errors" >&2
  failed=$((failed + 1))
}

# go run resolves ./cmd/interlude from the module root.
cd "$root"
for trace in "${traces[@]}"; do
  run_one "interlude (Go)" "$trace" go run ./cmd/interlude bench crdt "$trace"
  run_one "Yjs" "$trace" node "$bench_dir/replay.mjs" yjs "$trace"
  run_one "Loro" "$trace" node "$bench_dir/replay.mjs" loro "$trace"
done

node - "$results" <<'EOF' || failed=$((failed + 1))
const { readFileSync } = require('node:fs');

const lines = readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean);
const rows = lines.map((line) => {
  const tab = line.indexOf('\t');
  return { implementation: line.slice(0, tab), ...JSON.parse(line.slice(tab + 1)) };
});
const cell = (value) => {
  if (value === undefined) return '–';
  if (typeof value === 'number' && !Number.isInteger(value)) return value.toFixed(1);
  return String(value);
};
const name = (r) => (r.version ? `${r.implementation} ${r.version}` : r.implementation);

console.log('');
console.log('| trace | implementation | apply ms | save ms | load ms | saved bytes | peak heap MB | ok | peak RSS MB |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |');
for (const r of rows) {
  const row = [r.trace, name(r), r.apply_ms, r.save_ms, r.load_ms, r.saved_bytes, r.heap_mb, r.ok ? 'yes' : 'NO', r.rss_mb];
  console.log(`| ${row.map(cell).join(' | ')} |`);
}

const wrong = rows.filter((r) => !r.ok);
for (const r of wrong) {
  console.error(`compare.sh: ${name(r)} on ${r.trace}: the loaded text differs from endContent`);
}
process.exitCode = wrong.length > 0 ? 1 : 0;
EOF

if [ "$failed" -ne 0 ]; then
  echo "compare.sh: $failed run(s) failed, see above" >&2
  exit 1
fi
