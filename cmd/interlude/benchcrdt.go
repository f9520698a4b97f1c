package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"time"

	"interlude/crdt"
	"interlude/internal/trace"
)

// crdtResult is the JSON line that 'interlude bench crdt' prints.
type crdtResult struct {
	Trace string `json:"trace"`
	Edits int    `json:"edits"`
	// ApplyMS is the time to apply every patch as a local edit.
	ApplyMS float64 `json:"apply_ms"`
	SaveMS  float64 `json:"save_ms"`
	// LoadMS is the time to load the saved bytes into a fresh replica and
	// read its text.
	LoadMS     float64 `json:"load_ms"`
	SavedBytes int     `json:"saved_bytes"`
	// MergeMS is the time for a fresh replica to apply the whole history
	// as the updates another replica would receive.
	MergeMS float64 `json:"merge_ms"`
	// HeapMB is the peak of live heap objects during apply, sampled every
	// millisecond, in MiB.
	HeapMB float64 `json:"heap_mb"`
	OK     bool    `json:"ok"`
}

func runBenchCRDT(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench crdt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
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

func benchCRDT(tr *trace.Trace) (*crdtResult, error) {
	patches := tr.Patches()
	res := &crdtResult{Trace: tr.Name, Edits: len(patches)}

	// 1. Apply, with the heap sampled from another goroutine.
	runtime.GC()
	stop := make(chan struct{})
	peak := make(chan uint64)
	go sampleHeap(stop, peak)
	start := time.Now()
	doc := crdt.NewDoc(1)
	text, err := doc.Text("body")
	if err != nil {
		return nil, err
	}
	if err := replay(text, patches); err != nil {
		return nil, err
	}
	update := doc.Commit()
	res.ApplyMS = ms(time.Since(start))
	close(stop)
	res.HeapMB = float64(<-peak) / (1 << 20)

	// 2. Save, then load into a fresh replica.
	start = time.Now()
	saved, err := doc.Save()
	if err != nil {
		return nil, err
	}
	res.SaveMS = ms(time.Since(start))
	res.SavedBytes = len(saved)
	start = time.Now()
	loaded, err := crdt.Load(saved, 2)
	if err != nil {
		return nil, err
	}
	loadedText, err := loaded.Text("body")
	if err != nil {
		return nil, err
	}
	got := loadedText.String()
	res.LoadMS = ms(time.Since(start))

	// 3. Merge the whole history into a fresh replica as a remote update.
	start = time.Now()
	merged := crdt.NewDoc(3)
	if err := merged.Apply(update); err != nil {
		return nil, err
	}
	mergedText, err := merged.Text("body")
	if err != nil {
		return nil, err
	}
	res.MergeMS = ms(time.Since(start))

	res.OK = got == tr.EndContent && mergedText.String() == tr.EndContent
	return res, nil
}

// sampleHeap sends on peak the largest live heap seen until stop closes.
func sampleHeap(stop <-chan struct{}, peak chan<- uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var highest uint64
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		metrics.Read(sample)
		highest = max(highest, sample[0].Value.Uint64())
		select {
		case <-stop:
			peak <- highest
			return
		case <-tick.C:
		}
	}
}
