package crdt

import (
	"reflect"
	"testing"
)

// fuzzBase returns a document with every container type, nested ones
// included, edited by two replicas, with one held-back update, and the
// updates that built it, for fuzz seeds.
func fuzzBase(tb testing.TB) (*Doc, [][]byte) {
	a, b := NewDoc(1), NewDoc(2)
	var updates [][]byte
	commit := func(d *Doc) {
		if u := d.Commit(); u != nil {
			updates = append(updates, u)
		}
	}
	must := func(err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}

	body, _ := a.Text("body")
	must(body.Insert(0, "hello world"))
	meta, _ := a.Map("meta")
	must(meta.Set("title", "Week 1"))
	day, err := meta.SetNew("day", KindMap)
	must(err)
	must(day.(*Map).Set("mood", 4))
	log, _ := a.List("log")
	must(log.Insert(0, map[string]any{"mood": 3}, "walk"))
	note, err := log.InsertNew(1, KindText)
	must(err)
	must(note.(*Text).Insert(0, "park"))
	done, _ := a.Counter("done")
	must(done.Add(3))
	commit(a)
	must(b.Apply(updates[0]))

	bodyB, _ := b.Text("body")
	must(bodyB.Insert(5, ","))
	must(bodyB.Delete(0, 1))
	metaB, _ := b.Map("meta")
	must(metaB.Remove("title"))
	logB, _ := b.List("log")
	noteB, err := logB.Get(1)
	must(err)
	must(noteB.(*Text).Insert(4, "!"))
	must(logB.Delete(2, 1))
	doneB, _ := b.Counter("done")
	must(doneB.Add(-1))
	commit(b)

	must(body.Insert(11, "!"))
	must(meta.Set("title", "Week 2"))
	commit(a)
	must(body.Delete(2, 3))
	must(day.(*Map).Set("mood", 5))
	commit(a)

	d := NewDoc(3)
	for _, u := range updates[:2] {
		must(d.Apply(u))
	}
	must(d.Apply(updates[3])) // held back until updates[2]
	return d, updates
}

// FuzzApply checks that arbitrary bytes never make Apply panic, that an
// update it rejects leaves the document as it was, and that an update it
// accepts leaves a document that edits, saves, loads and re-sends its
// history as before.
func FuzzApply(f *testing.F) {
	_, updates := fuzzBase(f)
	for _, u := range updates {
		f.Add(u)
	}
	a, _ := commitsOf(f, 1)
	f.Add(a.UpdatesSince(nil)[0])
	f.Add([]byte{})
	f.Add([]byte{tagUpdate})
	f.Add([]byte{tagState})

	f.Fuzz(func(t *testing.T, data []byte) {
		d, _ := fuzzBase(t)
		before := stateOf(d)
		if err := d.Apply(data); err != nil {
			if after := stateOf(d); !reflect.DeepEqual(after, before) {
				t.Fatalf("rejected update changed the document from %v to %v", before, after)
			}
			return
		}
		checkUsable(t, d)
	})
}

// checkUsable checks that d accepts edits of every root container type,
// saves and loads to the same state, and re-sends its history in updates
// that a fresh replica applies to the same state.
func checkUsable(t *testing.T, d *Doc) {
	t.Helper()
	if text, err := d.Text("body"); err == nil {
		if err := text.Insert(text.Len(), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := d.Map("meta"); err == nil {
		if err := m.Set("fuzz", true); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := d.Counter("done"); err == nil {
		c.Add(1) // may leave the int64 range after a fuzzed add
	}
	saved, err := d.Save()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(saved, 4)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if got, want := loaded.State(), d.State(); !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded state %v, want %v", got, want)
	}

	peer := NewDoc(10)
	for i, u := range d.UpdatesSince(nil) {
		if err := peer.Apply(u); err != nil && i == 0 {
			t.Fatalf("history update: %v", err)
		}
	}
	if peer.HeldBack() == 0 {
		if got, want := peer.State(), d.State(); !reflect.DeepEqual(got, want) {
			t.Fatalf("replica that applied the history has %v, want %v", got, want)
		}
	}
}

// FuzzLoad checks that arbitrary saved-state bodies, after decompression,
// never make loading panic, and that a body that loads gives a usable
// document.
func FuzzLoad(f *testing.F) {
	d, _ := fuzzBase(f)
	saved, err := d.Save()
	if err != nil {
		f.Fatal(err)
	}
	body, err := decompressState(saved)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := decodeState(body)
		if err != nil {
			return
		}
		d.setReplica(9)
		d.State()
		// The first update carries the loaded history and must apply. The
		// others are held-back updates, which were never validated.
		peer := NewDoc(10)
		for i, u := range d.UpdatesSince(nil) {
			if err := peer.Apply(u); err != nil && i == 0 && len(d.history) > 0 {
				t.Fatalf("update from a loaded document: %v", err)
			}
		}
		// The peer's state is not compared: a corrupt body can order
		// items otherwise than merging their origins would, without
		// breaking any rule that loading checks.
		if _, err := d.Save(); err != nil {
			t.Fatal(err)
		}
		for _, r := range []string{"body", "meta", "log", "done"} {
			for k := KindText; k <= KindCounter; k++ {
				if c, err := rootOf(d, r, k); err == nil {
					editAny(t, c)
				}
			}
		}
	})
}

// editAny makes one small edit of c that suits its type, and fails the
// test on an error a valid edit must not return.
func editAny(t *testing.T, c Container) {
	t.Helper()
	var err error
	switch x := c.(type) {
	case *Text:
		err = x.Insert(0, "y")
	case *List:
		err = x.Insert(x.Len(), 1)
	case *Map:
		err = x.Set("k", 1)
	case *Counter:
		x.Add(1) // may leave the int64 range after corrupt adds
	}
	if err != nil {
		t.Fatalf("edit %s: %v", c.Kind(), err)
	}
}
