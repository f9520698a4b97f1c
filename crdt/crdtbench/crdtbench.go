// Package crdtbench replays a sequential editing trace into the crdt
// package and measures it: apply, save, load, merge and peak heap. The
// `interlude bench crdt` command and the WebAssembly runner in bench/wasm
// both use it, so that native and WebAssembly figures come from the same
// code.
package crdtbench

import (
	"fmt"
	"math"
	"runtime"
	"runtime/metrics"
	"strings"
	"time"

	"interlude/crdt"
	"interlude/internal/trace"
)

// Result is the measurement of one replay, printed as one JSON line.
type Result struct {
	Trace string `json:"trace"`
	Edits int    `json:"edits"`
	// ApplyMS is the time to apply every patch as a local edit, one Delete
	// and one Insert call each, and to commit them as one update.
	ApplyMS float64 `json:"apply_ms"`
	SaveMS  float64 `json:"save_ms"`
	// LoadMS is the time to load the saved bytes into a fresh replica and
	// read its text.
	LoadMS     float64 `json:"load_ms"`
	SavedBytes int     `json:"saved_bytes"`
	// MergeMS is the time for a fresh replica to apply the whole history,
	// as the update another replica would receive, and read its text.
	MergeMS float64 `json:"merge_ms"`
	// HeapMB is the peak of heap objects, live or not yet swept, sampled
	// every 1024 patches during apply, in MiB. It includes the patches,
	// about 12 bytes each plus the inserted text (3 MiB for
	// automerge-paper). Sampling happens between patches, not on a timer,
	// because WebAssembly runs one goroutine at a time.
	HeapMB float64 `json:"heap_mb"`
	// OK reports whether the loaded and the merged text both equal the
	// trace's final text.
	OK bool `json:"ok"`
}

// sampleEvery is the number of patches between two heap samples.
const sampleEvery = 1024

// Replay is a sequential trace in a compact form: the patches' numbers in
// flat slices and their inserted text in one string. A parsed trace holds
// each patch as a struct and a string inside a transaction, some 40 MiB
// for automerge-paper, which would dominate the heap figure and, in
// WebAssembly, where garbage collection runs on the only thread, the
// timings.
type Replay struct {
	name, start, end string
	pos, delete      []int32
	insertEnd        []int32 // patch i inserts text[insertEnd[i-1]:insertEnd[i]]
	text             string
}

// Prepare converts tr, a sequential trace, for Run. The caller should drop
// tr afterwards, so that its memory can be collected.
func Prepare(tr *trace.Trace) (*Replay, error) {
	if tr.Kind == "concurrent" {
		return nil, fmt.Errorf("trace %s is concurrent: replay a sequential trace", tr.Name)
	}
	n := tr.Edits()
	r := &Replay{
		name:      tr.Name,
		start:     tr.StartContent,
		end:       tr.EndContent,
		pos:       make([]int32, 0, n),
		delete:    make([]int32, 0, n),
		insertEnd: make([]int32, 0, n),
	}
	var text strings.Builder
	for _, txn := range tr.Txns {
		for _, p := range txn.Patches {
			if p.Pos < 0 || p.Pos > math.MaxInt32 || p.Delete < 0 || p.Delete > math.MaxInt32 || text.Len()+len(p.Insert) > math.MaxInt32 {
				return nil, fmt.Errorf("trace %s: patch %d [%d, %d, %d bytes] is outside the int32 range", tr.Name, len(r.pos), p.Pos, p.Delete, len(p.Insert))
			}
			text.WriteString(p.Insert)
			r.pos = append(r.pos, int32(p.Pos))
			r.delete = append(r.delete, int32(p.Delete))
			r.insertEnd = append(r.insertEnd, int32(text.Len()))
		}
	}
	r.text = text.String()
	return r, nil
}

// Run replays tr, a sequential trace, and returns the measurements.
func Run(tr *trace.Trace) (*Result, error) {
	r, err := Prepare(tr)
	if err != nil {
		return nil, err
	}
	return r.Run()
}

// Run replays r and returns the measurements.
func (r *Replay) Run() (*Result, error) {
	res := &Result{Trace: r.name, Edits: len(r.pos)}

	// 1. Apply, with the heap sampled between patches.
	runtime.GC()
	heap := heapSampler{sample: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
	heap.read()
	start := time.Now()
	doc := crdt.NewDoc(1)
	text, err := doc.Text("body")
	if err != nil {
		return nil, err
	}
	if err := text.Insert(0, r.start); err != nil {
		return nil, err
	}
	from := int32(0)
	for i, pos := range r.pos {
		if del := r.delete[i]; del > 0 {
			if err := text.Delete(int(pos), int(del)); err != nil {
				return nil, fmt.Errorf("patch %d: %w", i, err)
			}
		}
		if to := r.insertEnd[i]; to > from {
			if err := text.Insert(int(pos), r.text[from:to]); err != nil {
				return nil, fmt.Errorf("patch %d: %w", i, err)
			}
			from = to
		}
		if i%sampleEvery == 0 {
			heap.read()
		}
	}
	update := doc.Commit()
	res.ApplyMS = ms(time.Since(start))
	heap.read()
	res.HeapMB = float64(heap.peak) / (1 << 20)

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
	mergedString := mergedText.String()
	res.MergeMS = ms(time.Since(start))

	res.OK = got == r.end && mergedString == r.end
	return res, nil
}

// heapSampler keeps the highest heap size read.
type heapSampler struct {
	sample []metrics.Sample
	peak   uint64
}

func (h *heapSampler) read() {
	metrics.Read(h.sample)
	h.peak = max(h.peak, h.sample[0].Value.Uint64())
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
