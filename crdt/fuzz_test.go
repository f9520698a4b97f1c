package crdt

import (
	"reflect"
	"testing"
)

// fuzzBase returns a document with text from two replicas and one
// held-back update, and the updates that built it, for fuzz seeds.
func fuzzBase(tb testing.TB) (*Doc, [][]byte) {
	a, b := NewDoc(1), NewDoc(2)
	ta, _ := a.Text("body")
	tb2, _ := b.Text("body")
	var updates [][]byte
	ta.Insert(0, "hello world")
	updates = append(updates, a.Commit())
	if err := b.Apply(updates[0]); err != nil {
		tb.Fatal(err)
	}
	tb2.Insert(5, ",")
	tb2.Delete(0, 1)
	updates = append(updates, b.Commit())
	ta.Insert(11, "!")
	updates = append(updates, a.Commit())
	ta.Delete(2, 3)
	updates = append(updates, a.Commit())

	d := NewDoc(3)
	for _, u := range updates[:2] {
		if err := d.Apply(u); err != nil {
			tb.Fatal(err)
		}
	}
	if err := d.Apply(updates[3]); err != nil { // held back until updates[2]
		tb.Fatal(err)
	}
	return d, updates
}

// FuzzApply checks that arbitrary bytes never make Apply panic, and that an
// update it rejects leaves the document as it was.
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
		// An accepted update must leave a document that still saves,
		// loads and accepts edits.
		text, err := d.Text("body")
		if err != nil {
			t.Fatal(err)
		}
		if err := text.Insert(text.Len(), "x"); err != nil {
			t.Fatal(err)
		}
		saved, err := d.Save()
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := Load(saved, 4)
		if err != nil {
			t.Fatalf("load after applying %x: %v", data, err)
		}
		if got, want := loaded.State(), d.State(); !reflect.DeepEqual(got, want) {
			t.Fatalf("loaded state %v, want %v", got, want)
		}
	})
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
	})
}
