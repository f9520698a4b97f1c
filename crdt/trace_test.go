package crdt

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"
)

// The editing traces come from github.com/josephg/editing-traces (CC BY 4.0;
// automerge-paper by Martin Kleppmann). They sit beside the project, not
// in it, so the tests skip when the folder is missing.
const tracesDir = "../../shared/traces"

// sequentialTrace is the sequential trace format: patches applied in
// order like Array.prototype.splice, positions in code points.
type sequentialTrace struct {
	StartContent string `json:"startContent"`
	EndContent   string `json:"endContent"`
	Txns         []struct {
		Patches []tracePatch `json:"patches"`
	} `json:"txns"`
}

// tracePatch is [position, delete count, inserted text].
type tracePatch struct {
	Pos    int
	Delete int
	Insert string
}

func (p *tracePatch) UnmarshalJSON(data []byte) error {
	var raw [3]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw[0], &p.Pos); err != nil {
		return err
	}
	if err := json.Unmarshal(raw[1], &p.Delete); err != nil {
		return err
	}
	return json.Unmarshal(raw[2], &p.Insert)
}

func loadSequentialTrace(tb testing.TB, name string) *sequentialTrace {
	tb.Helper()
	f, err := os.Open(tracesDir + "/" + name)
	if os.IsNotExist(err) {
		tb.Skipf("trace %s not found in %s; it is shared material beside the project", name, tracesDir)
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	var trace sequentialTrace
	if err := json.NewDecoder(zr).Decode(&trace); err != nil {
		tb.Fatalf("decode trace %s: %v", name, err)
	}
	return &trace
}

// replayLocal applies every patch of trace as a local edit of one replica.
func replayLocal(tb testing.TB, trace *sequentialTrace) (*Doc, *Text) {
	tb.Helper()
	doc := NewDoc(0x5eed)
	text, err := doc.Text("body")
	if err != nil {
		tb.Fatal(err)
	}
	if err := text.Insert(0, trace.StartContent); err != nil {
		tb.Fatal(err)
	}
	for i, txn := range trace.Txns {
		for _, p := range txn.Patches {
			if p.Delete > 0 {
				if err := text.Delete(p.Pos, p.Delete); err != nil {
					tb.Fatalf("txn %d: %v", i, err)
				}
			}
			if p.Insert != "" {
				if err := text.Insert(p.Pos, p.Insert); err != nil {
					tb.Fatalf("txn %d: %v", i, err)
				}
			}
		}
	}
	return doc, text
}

func TestReplayAutomergePaper(t *testing.T) {
	trace := loadSequentialTrace(t, "automerge-paper.json.gz")

	doc, text := replayLocal(t, trace)
	if got := text.String(); got != trace.EndContent {
		t.Fatalf("replayed text has %d bytes and differs from endContent (%d bytes)", len(got), len(trace.EndContent))
	}
	if got, want := text.Len(), len([]rune(trace.EndContent)); got != want {
		t.Errorf("Len = %d, want %d", got, want)
	}

	saved, err := doc.Save()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(saved, 0x10ad)
	if err != nil {
		t.Fatal(err)
	}
	if got := loaded.State()["body"]; got != trace.EndContent {
		t.Errorf("loaded text differs from endContent")
	}
	if got, want := loaded.Version(), doc.Version(); !got.Includes(want) || !want.Includes(got) {
		t.Errorf("loaded version %v, want %v", got, want)
	}
	t.Logf("saved state: %d bytes", len(saved))
}

func TestReplayAutomergePaperRemote(t *testing.T) {
	trace := loadSequentialTrace(t, "automerge-paper.json.gz")
	doc, _ := replayLocal(t, trace)

	// A fresh replica gets the whole history as one update and must
	// reach the same text by merging, not by local edits.
	updates := doc.UpdatesSince(nil)
	if len(updates) != 1 {
		t.Fatalf("UpdatesSince(nil) returned %d updates, want 1", len(updates))
	}
	peer := NewDoc(0xfee1)
	start := time.Now()
	if err := peer.Apply(updates[0]); err != nil {
		t.Fatal(err)
	}
	t.Logf("update of %d bytes applied in %v", len(updates[0]), time.Since(start))
	if got := peer.State()["body"]; got != trace.EndContent {
		t.Errorf("peer text differs from endContent")
	}
	if peer.HeldBack() != 0 {
		t.Errorf("peer holds back %d updates", peer.HeldBack())
	}
}

func BenchmarkReplayAutomergePaper(b *testing.B) {
	trace := loadSequentialTrace(b, "automerge-paper.json.gz")
	var saved []byte
	for b.Loop() {
		doc, _ := replayLocal(b, trace)
		b.StopTimer()
		var err error
		saved, err = doc.Save()
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(len(saved)), "saved-bytes")
}

// BenchmarkSaveAutomergePaper measures Save of the replayed trace.
func BenchmarkSaveAutomergePaper(b *testing.B) {
	trace := loadSequentialTrace(b, "automerge-paper.json.gz")
	doc, _ := replayLocal(b, trace)
	var saved []byte
	for b.Loop() {
		var err error
		if saved, err = doc.Save(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(saved)), "saved-bytes")
}

// BenchmarkLoadAutomergePaper measures Load of the saved trace.
func BenchmarkLoadAutomergePaper(b *testing.B) {
	trace := loadSequentialTrace(b, "automerge-paper.json.gz")
	doc, _ := replayLocal(b, trace)
	saved, err := doc.Save()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Load(saved, 2); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyRemoteAutomergePaper measures a fresh replica applying the
// trace's whole history as one update from UpdatesSince.
func BenchmarkApplyRemoteAutomergePaper(b *testing.B) {
	trace := loadSequentialTrace(b, "automerge-paper.json.gz")
	doc, _ := replayLocal(b, trace)
	update := doc.UpdatesSince(nil)[0]
	for b.Loop() {
		if err := NewDoc(2).Apply(update); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(update)), "update-bytes")
}

func TestReplaySequentialTraces(t *testing.T) {
	for _, name := range []string{"seph-blog1.json.gz", "rustcode.json.gz"} {
		t.Run(name, func(t *testing.T) {
			trace := loadSequentialTrace(t, name)
			doc, text := replayLocal(t, trace)
			if text.String() != trace.EndContent {
				t.Fatalf("replayed text differs from endContent")
			}
			saved, err := doc.Save()
			if err != nil {
				t.Fatal(err)
			}
			loaded, err := Load(saved, 2)
			if err != nil {
				t.Fatal(err)
			}
			if loaded.State()["body"] != trace.EndContent {
				t.Errorf("loaded text differs from endContent")
			}
		})
	}
}

// concurrentTrace is the concurrent trace format: each transaction was
// made by one agent on the merged state of the transactions in parents.
type concurrentTrace struct {
	NumAgents  int    `json:"numAgents"`
	EndContent string `json:"endContent"`
	Txns       []struct {
		Agent   int          `json:"agent"`
		Parents []int        `json:"parents"`
		Patches []tracePatch `json:"patches"`
	} `json:"txns"`
}

// TestReplayConcurrentTraces replays real concurrent editing sessions: a
// replica per agent, each transaction made on exactly the updates of its
// parents, then all updates merged into one document.
func TestReplayConcurrentTraces(t *testing.T) {
	for _, name := range []string{"friendsforever.json.gz", "clownschool.json.gz"} {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(tracesDir + "/" + name)
			if os.IsNotExist(err) {
				t.Skipf("trace %s not found in %s; it is shared material beside the project", name, tracesDir)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			var trace concurrentTrace
			if err := json.NewDecoder(zr).Decode(&trace); err != nil {
				t.Fatal(err)
			}
			replayConcurrent(t, &trace)
		})
	}
}

func replayConcurrent(t *testing.T, trace *concurrentTrace) {
	agents := make([]*Doc, trace.NumAgents)
	applied := make([]map[int]bool, trace.NumAgents) // transactions each agent has
	for i := range agents {
		agents[i] = NewDoc(ReplicaID(1000 + i))
		applied[i] = make(map[int]bool)
	}
	updates := make([][]byte, len(trace.Txns))

	for i, txn := range trace.Txns {
		doc := agents[txn.Agent]
		// Collect the ancestors this agent lacks; what it has is closed
		// under ancestry, so the walk stops there.
		var missing []int
		stack := append([]int(nil), txn.Parents...)
		seen := make(map[int]bool)
		for len(stack) > 0 {
			p := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if applied[txn.Agent][p] || seen[p] {
				continue
			}
			seen[p] = true
			missing = append(missing, p)
			stack = append(stack, trace.Txns[p].Parents...)
		}
		slices.Sort(missing)
		for _, p := range missing {
			if err := doc.Apply(updates[p]); err != nil {
				t.Fatalf("txn %d: apply txn %d: %v", i, p, err)
			}
			applied[txn.Agent][p] = true
		}

		text := textOf(t, doc)
		for _, p := range txn.Patches {
			if p.Delete > 0 {
				mustDelete(t, text, p.Pos, p.Delete)
			}
			if p.Insert != "" {
				mustInsert(t, text, p.Pos, p.Insert)
			}
		}
		updates[i] = doc.Commit()
		applied[txn.Agent][i] = true
	}

	merged := NewDoc(1)
	for i, u := range updates {
		if u == nil {
			continue
		}
		if err := merged.Apply(u); err != nil {
			t.Fatalf("merge txn %d: %v", i, err)
		}
	}
	if got := textOf(t, merged).String(); got != trace.EndContent {
		t.Fatalf("merged text (%d bytes) differs from endContent (%d bytes)", len(got), len(trace.EndContent))
	}
	for _, doc := range agents {
		deliver(t, merged, doc)
		if got := textOf(t, doc).String(); got != trace.EndContent {
			t.Fatalf("agent replica %d differs from endContent after sync", doc.Replica())
		}
	}
}

func BenchmarkLoadSephBlog1(b *testing.B) {
	trace := loadSequentialTrace(b, "seph-blog1.json.gz")
	doc, _ := replayLocal(b, trace)
	saved, err := doc.Save()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Load(saved, 2); err != nil {
			b.Fatal(err)
		}
	}
}
