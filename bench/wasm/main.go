// Command wasm replays an editing trace into the crdt package and prints
// the same JSON line as `interlude bench crdt`. It is meant to be built
// for GOOS=js GOARCH=wasm and run in Node, so that the figures show what
// the browser client pays for the WebAssembly build; run.sh builds it,
// runs it next to the native build and prints both with their ratios.
//
// Usage: wasm [-warm N] TRACE
//
// With -warm N it replays the trace N times before the measured replay.
// A JavaScript engine first runs WebAssembly code from a fast baseline
// compiler and recompiles the functions that run often with its optimizing
// compiler. So the first replay in a process measures a mix of both. Later
// replays measure the optimized code, which is what a long session runs,
// or a browser that has cached the compiled module.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"interlude/crdt/crdtbench"
	"interlude/internal/trace"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wasm bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("wasm", flag.ContinueOnError)
	warm := fs.Int("warm", 0, "replays of the trace, not measured, before the measured one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("takes one trace file, for example ../shared/traces/automerge-paper.json.gz; got %d arguments", fs.NArg())
	}
	tr, err := trace.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	replay, err := crdtbench.Prepare(tr)
	if err != nil {
		return err
	}
	for range *warm {
		if _, err := replay.Run(); err != nil {
			return err
		}
	}
	res, err := replay.Run()
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
