package crdt

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func saveLoad(t *testing.T, d *Doc, replica ReplicaID) *Doc {
	t.Helper()
	data, err := d.Save()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(data, replica)
	if err != nil {
		t.Fatal(err)
	}
	return loaded
}

func TestSaveLoadRoundTrip(t *testing.T) {
	a, b := NewDoc(1), NewDoc(2)
	mustInsert(t, textOf(t, a), 0, "h\u00e9llo \U0001F600 world")
	syncAll(t, a, b)
	mustDelete(t, textOf(t, a), 2, 4)
	mustInsert(t, textOf(t, b), 3, "XY")
	title, err := b.Text("title")
	if err != nil {
		t.Fatal(err)
	}
	mustInsert(t, title, 0, "Week 1")
	syncAll(t, a, b)

	loaded := saveLoad(t, b, 2)
	if got, want := stateOf(loaded), stateOf(b); !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded %v, saved %v", got, want)
	}
	first, err := b.Save()
	if err != nil {
		t.Fatal(err)
	}
	second, err := loaded.Save()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Errorf("saving a loaded document gives other bytes (%d vs %d)", len(second), len(first))
	}

	// The loaded replica keeps merging with the others.
	mustInsert(t, textOf(t, loaded), 0, ">")
	mustInsert(t, textOf(t, a), textOf(t, a).Len(), "<")
	syncAll(t, a, loaded)
	requireConverged(t, a, loaded)
}

func TestSaveLoadKeepsHeldBackUpdates(t *testing.T) {
	_, updates := commitsOf(t, 1)
	b := NewDoc(2)
	for _, u := range updates[1:] {
		if err := b.Apply(u); err != nil {
			t.Fatal(err)
		}
	}
	loaded := saveLoad(t, b, 2)
	if got := loaded.HeldBack(); got != 3 {
		t.Fatalf("HeldBack after load = %d, want 3", got)
	}
	if err := loaded.Apply(updates[0]); err != nil {
		t.Fatal(err)
	}
	if got := loaded.State()["body"]; got != "ac" || loaded.HeldBack() != 0 {
		t.Errorf("text = %q with %d held back, want %q with none", got, loaded.HeldBack(), "ac")
	}
}

func TestSaveLoadKeepsUncommittedEdits(t *testing.T) {
	a := NewDoc(1)
	mustInsert(t, textOf(t, a), 0, "draft")
	mustDelete(t, textOf(t, a), 0, 1)

	for _, replica := range []ReplicaID{1, 5} {
		loaded := saveLoad(t, a, replica)
		update := loaded.Commit()
		if update == nil {
			t.Fatalf("replica %d: Commit after load returned nil; the uncommitted edits were lost", replica)
		}
		peer := NewDoc(9)
		if err := peer.Apply(update); err != nil {
			t.Fatal(err)
		}
		if got := peer.State()["body"]; got != "raft" {
			t.Errorf("replica %d: peer text = %q, want %q", replica, got, "raft")
		}
	}
}

func TestLoadWithNewReplica(t *testing.T) {
	a := NewDoc(1)
	mustInsert(t, textOf(t, a), 0, "abc")
	a.Commit()
	loaded := saveLoad(t, a, 2)
	if loaded.Replica() != 2 {
		t.Fatalf("Replica = %d, want 2", loaded.Replica())
	}
	mustInsert(t, textOf(t, loaded), 3, "d")
	u, err := decodeUpdate(loaded.Commit())
	if err != nil {
		t.Fatal(err)
	}
	if len(u.ops) != 1 || u.ops[0].id != (opID{replica: 2, counter: 0}) {
		t.Errorf("edit after load has operations %+v, want one by replica 2 at counter 0", u.ops)
	}
	mustInsert(t, textOf(t, a), 0, "0")
	syncAll(t, a, loaded)
	if got := requireConverged(t, a, loaded); got != "0abcd" {
		t.Errorf("text = %q, want %q", got, "0abcd")
	}
}

func TestLoadRejectsCorruptState(t *testing.T) {
	a, b := NewDoc(1), NewDoc(2)
	mustInsert(t, textOf(t, a), 0, "some text to save")
	syncAll(t, a, b)
	mustDelete(t, textOf(t, b), 3, 5)
	mustInsert(t, textOf(t, a), 4, "more")
	syncAll(t, a, b)
	data, err := b.Save()
	if err != nil {
		t.Fatal(err)
	}

	if _, err := Load(nil, 1); !errors.Is(err, ErrInvalidState) {
		t.Errorf("Load(nil): error = %v, want ErrInvalidState", err)
	}
	if _, err := Load(b.UpdatesSince(nil)[0], 1); !errors.Is(err, ErrInvalidState) {
		t.Errorf("Load of an update: error = %v, want ErrInvalidState", err)
	}
	for n := range len(data) {
		if _, err := Load(data[:n], 1); !errors.Is(err, ErrInvalidState) {
			t.Fatalf("prefix of %d of %d bytes: error = %v, want ErrInvalidState", n, len(data), err)
		}
	}

	// Corrupt the body before compression, where the checks must catch
	// what a checksum would not.
	body, err := decompressState(data)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	rejected := 0
	for range 3000 {
		corrupt := append([]byte(nil), body...)
		corrupt[rng.IntN(len(corrupt))] ^= byte(1 + rng.IntN(255))
		d, err := decodeState(corrupt)
		if err != nil {
			rejected++
			continue
		}
		// A corruption that still decodes must give a usable document.
		d.setReplica(3)
		d.State()
		mustInsert(t, textOf(t, d), 0, "x")
		if _, err := d.Save(); err != nil {
			t.Fatal(err)
		}
	}
	if rejected == 0 {
		t.Errorf("no corrupted state was rejected")
	}
}

func TestLoadRejectsAcausalHistory(t *testing.T) {
	a, b := NewDoc(1), NewDoc(2)
	mustInsert(t, textOf(t, a), 0, "x")
	syncAll(t, a, b)
	mustDelete(t, textOf(t, b), 0, 1)
	mustInsert(t, textOf(t, b), 0, "y")
	if _, err := decodeState(b.encodeState()); err != nil {
		t.Fatalf("state in causal order: %v", err)
	}

	// B's delete of A's "x" listed before A's insert of it.
	slices.Reverse(b.history)
	_, err := decodeState(b.encodeState())
	if err == nil {
		t.Fatal("state whose history lists a delete before its target loaded without error")
	}
	if !strings.Contains(err.Error(), "comes before") {
		t.Errorf("error = %v, want one about the order of operations", err)
	}
}

// TestOpenCloseDoesNotGrowMemory loads, saves and drops a document many
// times without editing it. The bytes must stay the same, and the live heap
// after garbage collection must not grow with the number of rounds. This
// is a leak check, not a timing: the bound is generous.
func TestOpenCloseDoesNotGrowMemory(t *testing.T) {
	d := NewDoc(1)
	rng := rand.New(rand.NewPCG(3, 3))
	for range 3000 {
		mustEdit(t, d, randomEdit(t, d, rng, everyEdit))
	}
	saved, err := d.Save()
	if err != nil {
		t.Fatal(err)
	}
	liveHeap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var loadedDocs []*Doc
	openClose := func(rounds int) {
		for range rounds {
			loaded, err := Load(saved, 2)
			if err != nil {
				t.Fatal(err)
			}
			again, err := loaded.Save()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, saved) {
				t.Fatalf("saving an unedited document gives %d bytes, was %d", len(again), len(saved))
			}
		}
	}

	// The heap of one loaded document shows how much a leak of each round
	// would add.
	before := liveHeap()
	for range 10 {
		loaded, err := Load(saved, 2)
		if err != nil {
			t.Fatal(err)
		}
		loadedDocs = append(loadedDocs, loaded)
	}
	perDoc := (liveHeap() - before) / 10
	runtime.KeepAlive(loadedDocs)

	const rounds = 200
	openClose(20)
	base := liveHeap()
	openClose(rounds)
	grown := int64(liveHeap()) - int64(base)
	t.Logf("one loaded document holds %d KiB; the heap grew by %d KiB over %d rounds", perDoc>>10, grown>>10, rounds)
	if perDoc*rounds < 8<<20 {
		t.Fatalf("a loaded document holds only %d bytes, too little for a leak to show", perDoc)
	}
	if limit := int64(perDoc * rounds / 8); grown > limit {
		t.Errorf("the heap grew by %d bytes over %d rounds of load and save, more than %d", grown, rounds, limit)
	}
}
