#!/usr/bin/env bash
# Replays editing traces into the crdt package natively and as WebAssembly
# in Node, one process each, and prints the JSON lines with the
# WebAssembly/native ratio of every timing. It does so twice. "cold" is the
# first replay in a fresh process. "warm" is a replay after WARM unmeasured
# ones (default 2), once the engine has optimized the hot WebAssembly code.
#
# Usage: bench/wasm/run.sh [TRACE...]
#   TRACE is a trace file, or a name such as seph-blog1 that is looked up as
#   $SHARED/traces/NAME.json.gz. SHARED defaults to ../shared, taken from the
#   repository root when relative. Without arguments it runs automerge-paper.
#   RUNS sets how many processes each line takes the best of (default 3):
#   the fastest time of each field counts, because noise on a shared machine
#   only ever adds time. The heap is the largest seen. GOGC and the other
#   Go runtime variables of the environment reach both builds. Garbage
#   collection costs WebAssembly more, because there it runs on the one
#   thread that also runs the program.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
shared="${SHARED:-../shared}"
case "$shared" in
  /*) ;;
  *) shared="$root/$shared" ;;
esac
runs="${RUNS:-3}"
warm="${WARM:-2}"
if [ "$#" -eq 0 ]; then
  set -- automerge-paper
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$root"
go build -o "$work/native" ./bench/wasm
GOOS=js GOARCH=wasm go build -o "$work/bench.wasm" ./bench/wasm
exec_wasm="$(go env GOROOT)/lib/wasm/go_js_wasm_exec"

for arg in "$@"; do
  if [ -f "$arg" ]; then
    file="$(cd "$(dirname "$arg")" && pwd)/$(basename "$arg")"
  elif [ -f "$shared/traces/$arg.json.gz" ]; then
    file="$shared/traces/$arg.json.gz"
  else
    echo "run.sh: trace $arg not found: give a file or a name in $shared/traces (set SHARED to move it)" >&2
    exit 2
  fi
  for mode in cold warm; do
    flags=()
    if [ "$mode" = warm ]; then
      flags=(-warm "$warm")
    fi
    : >"$work/native.jsonl"
    : >"$work/wasm.jsonl"
    for _ in $(seq "$runs"); do
      "$work/native" "${flags[@]}" "$file" >>"$work/native.jsonl"
      "$exec_wasm" "$work/bench.wasm" "${flags[@]}" "$file" >>"$work/wasm.jsonl"
    done
    node - "$mode" "$work/native.jsonl" "$work/wasm.jsonl" <<'JS'
const fs = require("fs");
const read = (f) => fs.readFileSync(f, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const mode = process.argv[2];
const [native, wasm] = process.argv.slice(3).map(read);
const keys = ["apply_ms", "save_ms", "load_ms", "merge_ms"];
const best = (rows) => {
  const out = { ...rows[0] };
  for (const k of keys) out[k] = Math.min(...rows.map((r) => r[k]));
  out.heap_mb = Math.max(...rows.map((r) => r.heap_mb));
  out.ok = rows.every((r) => r.ok);
  return out;
};
const n = best(native), w = best(wasm);
console.log(JSON.stringify({ mode, platform: "native", ...n }));
console.log(JSON.stringify({ mode, platform: "js/wasm, node " + process.version, ...w }));
const ratio = {};
for (const k of keys) ratio[k] = Math.round((w[k] / n[k]) * 100) / 100;
console.log(JSON.stringify({ mode, trace: n.trace, processes: native.length, wasm_over_native: ratio }));
JS
  done
done
