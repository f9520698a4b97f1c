package crdtbench

import (
	"testing"

	"interlude/internal/trace"
)

func smallTrace() *trace.Trace {
	return &trace.Trace{
		Name:       "small",
		EndContent: "h\u00e9llo world \U0001F600",
		Txns: []trace.Txn{
			{Patches: []trace.Patch{{Pos: 0, Insert: "hello"}}},
			{Patches: []trace.Patch{{Pos: 1, Delete: 1, Insert: "\u00e9"}, {Pos: 5, Insert: " wurld"}}},
			{Patches: []trace.Patch{{Pos: 7, Delete: 1}, {Pos: 7, Insert: "o"}, {Pos: 11, Insert: " \U0001F600"}}},
		},
	}
}

func TestRunSmallTrace(t *testing.T) {
	res, err := Run(smallTrace())
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK {
		t.Fatalf("replay did not reach the final text: %+v", res)
	}
	if res.Edits != 6 {
		t.Errorf("edits = %d, want 6", res.Edits)
	}
	if res.SavedBytes == 0 || res.HeapMB == 0 {
		t.Errorf("saved_bytes = %d, heap_mb = %f; want both above 0", res.SavedBytes, res.HeapMB)
	}
}

func TestRunReportsWrongFinalText(t *testing.T) {
	tr := smallTrace()
	tr.EndContent = "something else"
	res, err := Run(tr)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK {
		t.Errorf("ok = true for a trace whose final text differs")
	}
}

func TestPrepareRejectsConcurrentTrace(t *testing.T) {
	tr := smallTrace()
	tr.Kind = "concurrent"
	if _, err := Prepare(tr); err == nil {
		t.Errorf("Prepare accepted a concurrent trace")
	}
}
