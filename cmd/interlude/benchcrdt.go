package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"interlude/crdt/crdtbench"
	"interlude/internal/trace"
)

func runBenchCRDT(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench crdt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	setUsage(fs, "FILE", "Replay the sequential editing trace FILE into one CRDT replica, save it, load it and merge it, and print one JSON line of figures.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("bench crdt takes one trace file, for example ../shared/traces/automerge-paper.json.gz")
	}
	tr, err := trace.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	if tr.Kind == "concurrent" {
		return fmt.Errorf("%s is a concurrent trace: bench crdt replays sequential traces only", fs.Arg(0))
	}
	res, err := benchCRDT(tr)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

// benchCRDT replays tr with the code that the WebAssembly runner in
// bench/wasm uses too, so that their figures compare. The parsed trace is
// dropped before the replay, so that its memory does not count.
func benchCRDT(tr *trace.Trace) (*crdtbench.Result, error) {
	replay, err := crdtbench.Prepare(tr)
	if err != nil {
		return nil, err
	}
	return replay.Run()
}
