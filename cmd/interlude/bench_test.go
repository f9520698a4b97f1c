package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"interlude/internal/trace"
)

// smallTrace types a sentence, deletes a word and inserts another, as a
// sequential trace.
func smallTrace() *trace.Trace {
	tr := &trace.Trace{Name: "small"}
	text := "Today I walked to the river and back."
	for i, r := range text {
		tr.Txns = append(tr.Txns, trace.Txn{Patches: []trace.Patch{{Pos: i, Insert: string(r)}}})
	}
	at := strings.Index(text, "walked")
	tr.Txns = append(tr.Txns,
		trace.Txn{Patches: []trace.Patch{{Pos: at, Delete: len("walked")}}},
		trace.Txn{Patches: []trace.Patch{{Pos: at, Insert: "cycled 🚲"}}})
	tr.EndContent = strings.Replace(text, "walked", "cycled 🚲", 1)
	return tr
}

func TestBenchTraceSmall(t *testing.T) {
	tr := smallTrace()
	res, err := benchTrace(context.Background(), tr, 7, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK {
		t.Fatalf("bench trace did not converge: %+v", res)
	}
	if res.Edits != len(tr.Txns) {
		t.Errorf("edits = %d, want %d", res.Edits, len(tr.Txns))
	}
	if want := (len(tr.Txns) + 6) / 7; res.Updates != want {
		t.Errorf("updates = %d, want %d", res.Updates, want)
	}
	if res.WireBytes == 0 {
		t.Error("wire_bytes = 0, want the bytes both clients exchanged")
	}
}

func TestBenchCRDTSmall(t *testing.T) {
	res, err := benchCRDT(smallTrace())
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK {
		t.Fatalf("bench crdt result not ok: %+v", res)
	}
	if res.SavedBytes == 0 {
		t.Error("saved_bytes = 0")
	}
}
