package crdt

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"reflect"
	"testing"
)

func mustList(t *testing.T, d *Doc, name string) *List {
	t.Helper()
	l, err := d.List(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustMap(t *testing.T, d *Doc, name string) *Map {
	t.Helper()
	m, err := d.Map(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustCounter(t *testing.T, d *Doc, name string) *Counter {
	t.Helper()
	c, err := d.Counter(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// requireStates checks that every doc has the state want.
func requireStates(t *testing.T, want map[string]any, docs ...*Doc) {
	t.Helper()
	for _, d := range docs {
		if got := d.State(); !reflect.DeepEqual(got, want) {
			t.Fatalf("replica %d has state %v, want %v", d.Replica(), got, want)
		}
	}
}

func TestListInsertGetDelete(t *testing.T) {
	d := NewDoc(1)
	l := mustList(t, d, "log")
	must(t, l.Insert(0, "a", int64(2)))
	must(t, l.Insert(1, map[string]any{"mood": 3}))
	must(t, l.Insert(3, nil))
	if got, want := l.Value(), []any{"a", map[string]any{"mood": int64(3)}, int64(2), nil}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Value = %v, want %v", got, want)
	}
	v, err := l.Get(1)
	must(t, err)
	v.(map[string]any)["mood"] = "changed" // a copy: the list keeps its value
	if got, _ := l.Get(1); !reflect.DeepEqual(got, map[string]any{"mood": int64(3)}) {
		t.Errorf("changing a value from Get changed the list: %v", got)
	}
	must(t, l.Delete(0, 2))
	if got, want := l.Value(), []any{int64(2), nil}; !reflect.DeepEqual(got, want) {
		t.Fatalf("after delete Value = %v, want %v", got, want)
	}

	for name, err := range map[string]error{
		"insert past end":  l.Insert(3, 1),
		"delete past end":  l.Delete(1, 2),
		"get past end":     func() error { _, err := l.Get(2); return err }(),
		"insert new at -1": func() error { _, err := l.InsertNew(-1, KindMap); return err }(),
	} {
		if !errors.Is(err, ErrOutOfRange) {
			t.Errorf("%s: error = %v, want ErrOutOfRange", name, err)
		}
	}
	if err := l.Insert(0, func() {}); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("insert of a func: error = %v, want ErrInvalidValue", err)
	}
	if got := l.Len(); got != 2 {
		t.Errorf("Len = %d after rejected edits, want 2", got)
	}
}

func TestListConcurrentInsertsMerge(t *testing.T) {
	a, b := NewDoc(1), NewDoc(2)
	must(t, mustList(t, a, "log").Insert(0, "x", "y"))
	syncAll(t, a, b)
	must(t, mustList(t, a, "log").Delete(0, 1))
	must(t, mustList(t, b, "log").Insert(1, "b1", "b2"))
	must(t, mustList(t, a, "log").Insert(1, "a1"))
	syncAll(t, a, b)
	got := a.State()["log"]
	if want := []any{"b1", "b2", "y", "a1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("log = %v, want %v", got, want)
	}
	requireStates(t, a.State(), b)
}

func TestMapSetGetRemove(t *testing.T) {
	d := NewDoc(1)
	m := mustMap(t, d, "meta")
	must(t, m.Set("title", "Week 1"))
	must(t, m.Set("tags", []string{"sleep", "mood"}))
	must(t, m.Set("big", uint64(math.MaxUint64)))
	must(t, m.Set("n", json.Number("12345678901234567890")))
	must(t, m.Set("f", float32(0.5)))
	must(t, m.Set("title", "Week 2"))
	must(t, m.Remove("missing"))

	want := map[string]any{
		"title": "Week 2",
		"tags":  []any{"sleep", "mood"},
		"big":   uint64(math.MaxUint64),
		"n":     uint64(12345678901234567890),
		"f":     0.5,
	}
	if got := m.Value(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Value = %v, want %v", got, want)
	}
	if got, want := m.Keys(), []string{"big", "f", "n", "tags", "title"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Keys = %v, want %v", got, want)
	}
	must(t, m.Remove("tags"))
	if _, ok := m.Get("tags"); ok || m.Len() != 4 {
		t.Errorf("after Remove: Get ok = %v, Len = %d", ok, m.Len())
	}

	for name, v := range map[string]any{
		"NaN":          math.NaN(),
		"invalid UTF8": "a\xffb",
		"channel":      make(chan int),
		"container":    m,
		"deep":         deepValue(maxValueDepth + 1),
	} {
		if err := m.Set("bad", v); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("Set %s: error = %v, want ErrInvalidValue", name, err)
		}
	}
	if err := m.Set("a\xff", 1); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("Set with an invalid key: error = %v, want ErrInvalidUTF8", err)
	}

	// The values survive an update and a saved state exactly.
	requireStates(t, d.State(), restarted(t, d))
	peer := NewDoc(2)
	deliver(t, d, peer)
	requireStates(t, d.State(), peer)
}

func deepValue(depth int) any {
	var v any = "leaf"
	for range depth {
		v = []any{v}
	}
	return v
}

func TestMapRemoveKeepsConcurrentSet(t *testing.T) {
	a, b := NewDoc(1), NewDoc(2)
	must(t, mustMap(t, a, "meta").Set("due", "Monday"))
	syncAll(t, a, b)
	must(t, mustMap(t, a, "meta").Remove("due"))
	must(t, mustMap(t, b, "meta").Set("due", "Tuesday"))
	syncAll(t, a, b)
	requireStates(t, map[string]any{"meta": map[string]any{"due": "Tuesday"}}, a, b)
}

func TestMapConcurrentSetsKeepEveryValue(t *testing.T) {
	a, b := NewDoc(1), NewDoc(2)
	must(t, mustMap(t, a, "meta").Set("title", "from A"))
	must(t, mustMap(t, b, "meta").Set("title", "from B"))
	syncAll(t, a, b)
	// Equal Lamport times: the higher replica id wins.
	requireStates(t, map[string]any{"meta": map[string]any{"title": "from B"}}, a, b)
	if got, want := mustMap(t, a, "meta").GetAll("title"), []any{"from B", "from A"}; !reflect.DeepEqual(got, want) {
		t.Errorf("GetAll = %v, want %v", got, want)
	}

	// A set made after seeing both replaces both.
	must(t, mustMap(t, a, "meta").Set("title", "agreed"))
	syncAll(t, a, b)
	if got := mustMap(t, b, "meta").GetAll("title"); !reflect.DeepEqual(got, []any{"agreed"}) {
		t.Errorf("GetAll after a later set = %v, want only the later value", got)
	}

	// A replica that has set the key more often wins over a lower replica
	// id with fewer sets, because its Lamport time is higher.
	must(t, mustMap(t, a, "meta").Set("mood", 1))
	must(t, mustMap(t, a, "meta").Set("mood", 2))
	must(t, mustMap(t, b, "meta").Set("mood", 9))
	syncAll(t, a, b)
	requireStates(t, map[string]any{"meta": map[string]any{"title": "agreed", "mood": int64(2)}}, a, b)
}

// TestMapConcurrentCreationsMerge holds the rule for containers created
// concurrently under one key: of the same type they are one container and
// both replicas' edits inside it survive.
func TestMapConcurrentCreationsMerge(t *testing.T) {
	a, b := NewDoc(1), NewDoc(2)
	for _, d := range []*Doc{a, b} {
		j := mustMap(t, d, "journal")
		day, err := j.SetNew("day1", KindMap)
		must(t, err)
		must(t, day.(*Map).Set("by", int64(d.Replica())))
		note, err := day.(*Map).SetNew("note", KindText)
		must(t, err)
		must(t, note.(*Text).Insert(0, []string{"", "walk", "read"}[d.Replica()]))
		steps, err := day.(*Map).SetNew("steps", KindCounter)
		must(t, err)
		must(t, steps.(*Counter).Add(int64(100*d.Replica())))
	}
	syncAll(t, a, b)

	day := a.State()["journal"].(map[string]any)["day1"].(map[string]any)
	if got := day["steps"]; got != int64(300) {
		t.Errorf("merged counter = %v, want 300", got)
	}
	if got := day["note"]; got != "walkread" && got != "readwalk" {
		t.Errorf("merged text = %q, want both replicas' runs whole", got)
	}
	if got := day["by"]; got != int64(2) {
		t.Errorf("by = %v, want the higher replica's 2", got)
	}
	requireStates(t, a.State(), b, restarted(t, a))

	// A third replica that receives the creations in either order merges
	// them the same way.
	for _, order := range [][]*Doc{{a, b}, {b, a}} {
		c := NewDoc(3)
		for _, from := range order {
			for _, u := range from.UpdatesSince(nil) {
				must(t, c.Apply(u))
			}
		}
		requireStates(t, a.State(), c)
	}

	// Handles keep working after the merge: B's handle edits the one
	// container.
	v, _ := mustMap(t, b, "journal").Get("day1")
	must(t, v.(*Map).Set("after", true))
	syncAll(t, a, b)
	if got := a.State()["journal"].(map[string]any)["day1"].(map[string]any)["after"]; got != true {
		t.Errorf("edit through the merged container = %v, want true", got)
	}
}

func TestMapSetNewAfterSeeingReplaces(t *testing.T) {
	a, b := NewDoc(1), NewDoc(2)
	day, err := mustMap(t, a, "journal").SetNew("day1", KindMap)
	must(t, err)
	must(t, day.(*Map).Set("old", 1))
	syncAll(t, a, b)
	fresh, err := mustMap(t, b, "journal").SetNew("day1", KindMap)
	must(t, err)
	must(t, fresh.(*Map).Set("new", 2))
	// A's edit of the replaced container is kept inside it but no longer
	// shows.
	must(t, day.(*Map).Set("late", 3))
	syncAll(t, a, b)
	requireStates(t, map[string]any{"journal": map[string]any{"day1": map[string]any{"new": int64(2)}}}, a, b)
}

// TestMapRemoveHidesConcurrentNestedEdit holds the rule for a remove
// concurrent with an edit inside the removed container: the remove takes
// the key away with the container, and the edit stays inside it, unseen.
func TestMapRemoveHidesConcurrentNestedEdit(t *testing.T) {
	a, b := NewDoc(1), NewDoc(2)
	day, err := mustMap(t, a, "journal").SetNew("day1", KindMap)
	must(t, err)
	must(t, day.(*Map).Set("mood", 4))
	syncAll(t, a, b)
	must(t, mustMap(t, a, "journal").Remove("day1"))
	v, _ := mustMap(t, b, "journal").Get("day1")
	must(t, v.(*Map).Set("mood", 5))
	syncAll(t, a, b)
	requireStates(t, map[string]any{"journal": map[string]any{}}, a, b)
}

func TestListDeleteHidesConcurrentNestedEdit(t *testing.T) {
	a, b, c := NewDoc(1), NewDoc(2), NewDoc(3)
	entry, err := mustList(t, a, "entries").InsertNew(0, KindText)
	must(t, err)
	must(t, entry.(*Text).Insert(0, "draft"))
	syncAll(t, a, b)
	must(t, mustList(t, a, "entries").Delete(0, 1))
	v, err := mustList(t, b, "entries").Get(0)
	must(t, err)
	must(t, v.(*Text).Insert(5, " two"))
	syncAll(t, a, b)
	requireStates(t, map[string]any{"entries": []any{}}, a, b)

	// A replica that gets the history only from A, which sends the
	// deleted element without its value, still accepts B's edit inside it.
	deliver(t, a, c)
	requireStates(t, a.State(), c, restarted(t, c))
}

func TestCounterAddAndRange(t *testing.T) {
	a, b := NewDoc(1), NewDoc(2)
	ca, cb := mustCounter(t, a, "done"), mustCounter(t, b, "done")
	must(t, ca.Add(0))
	requireStates(t, map[string]any{"done": int64(0)}, a)
	must(t, ca.Add(math.MaxInt64))
	if err := ca.Add(1); !errors.Is(err, ErrCounterRange) {
		t.Fatalf("Add past the int64 range: error = %v, want ErrCounterRange", err)
	}
	if u := a.Commit(); u == nil {
		t.Fatal("no update for the successful adds")
	}
	must(t, cb.Add(10))

	// Concurrent adds take the sum past int64; every replica agrees.
	syncAll(t, a, b)
	want := new(big.Int).Add(big.NewInt(math.MaxInt64), big.NewInt(10))
	for _, d := range []*Doc{a, b, restarted(t, b)} {
		c := mustCounter(t, d, "done")
		if got := c.Value(); got.(*big.Int).Cmp(want) != 0 {
			t.Errorf("replica %d: Value = %v, want %v", d.Replica(), got, want)
		}
		if _, err := c.Int(); !errors.Is(err, ErrCounterRange) {
			t.Errorf("replica %d: Int error = %v, want ErrCounterRange", d.Replica(), err)
		}
	}
	must(t, cb.Add(-20))
	if got, err := cb.Int(); err != nil || got != math.MaxInt64-10 {
		t.Errorf("Int = %d, %v; want %d", got, err, int64(math.MaxInt64-10))
	}
}

// TestRootTypeConflict holds the rule for one root name created with
// different types concurrently: the lowest Kind shows, the other stays in
// the document but can no longer be edited.
func TestRootTypeConflict(t *testing.T) {
	a, b := NewDoc(1), NewDoc(2)
	mustInsert(t, textOf(t, a), 0, "text")
	counter := mustCounter(t, b, "body")
	must(t, counter.Add(5))
	syncAll(t, a, b)

	requireStates(t, map[string]any{"body": "text"}, a, b, restarted(t, b))
	b.Commit()
	if err := counter.Add(1); !errors.Is(err, ErrTypeMismatch) {
		t.Errorf("Add to the hidden counter: error = %v, want ErrTypeMismatch", err)
	}
	if _, err := b.Counter("body"); !errors.Is(err, ErrTypeMismatch) {
		t.Errorf("Doc.Counter of a text's name: error = %v, want ErrTypeMismatch", err)
	}
	if b.Commit() != nil {
		t.Errorf("rejected edits made an update")
	}
	mustInsert(t, textOf(t, b), 4, "!")
	syncAll(t, a, b)
	requireStates(t, map[string]any{"body": "text!"}, a, b)
}

func TestTypeMismatchRejectedLocally(t *testing.T) {
	d := NewDoc(1)
	must(t, mustMap(t, d, "meta").Set("k", 1))
	before := d.State()
	d.Commit()
	for name, err := range map[string]error{
		"text":    func() error { _, err := d.Text("meta"); return err }(),
		"list":    func() error { _, err := d.List("meta"); return err }(),
		"counter": func() error { _, err := d.Counter("meta"); return err }(),
	} {
		if !errors.Is(err, ErrTypeMismatch) {
			t.Errorf("Doc.%s of a map's name: error = %v, want ErrTypeMismatch", name, err)
		}
	}
	requireStates(t, before, d)
	if d.Commit() != nil {
		t.Errorf("rejected calls made an update")
	}

	// A handle taken before the name was used elsewhere fails on edit.
	l := mustList(t, d, "later")
	must(t, mustCounter(t, d, "later").Add(1))
	if err := l.Insert(0, 1); !errors.Is(err, ErrTypeMismatch) {
		t.Errorf("Insert into a list whose name a counter took: error = %v, want ErrTypeMismatch", err)
	}
}

func TestStateNestsContainers(t *testing.T) {
	d := NewDoc(1)
	entries := mustList(t, d, "entries")
	e, err := entries.InsertNew(0, KindMap)
	must(t, err)
	must(t, e.(*Map).Set("mood", 4))
	body, err := e.(*Map).SetNew("body", KindText)
	must(t, err)
	must(t, body.(*Text).Insert(0, "Walked"))
	tags, err := e.(*Map).SetNew("tags", KindList)
	must(t, err)
	must(t, tags.(*List).Insert(0, "park"))
	steps, err := tags.(*List).InsertNew(1, KindCounter)
	must(t, err)
	must(t, steps.(*Counter).Add(3))

	want := map[string]any{"entries": []any{map[string]any{
		"mood": int64(4),
		"body": "Walked",
		"tags": []any{"park", int64(3)},
	}}}
	requireStates(t, want, d, restarted(t, d))
	peer := NewDoc(2)
	if err := peer.Apply(d.Commit()); err != nil {
		t.Fatal(err)
	}
	requireStates(t, want, peer)
}

// TestCommitKeepsValueReplacedRemotely covers a set that a remote replica
// replaced before the local Commit sent it: the update carries the value,
// because the replacing operation travels in another update.
func TestCommitKeepsValueReplacedRemotely(t *testing.T) {
	a, b, c := NewDoc(1), NewDoc(2), NewDoc(3)
	must(t, mustMap(t, a, "meta").Set("k", "from A"))
	deliver(t, a, b) // by version vector, before A commits
	must(t, mustMap(t, b, "meta").Set("k", "from B"))
	deliver(t, b, a)

	if err := c.Apply(a.Commit()); err != nil {
		t.Fatalf("apply A's commit alone: %v", err)
	}
	requireStates(t, map[string]any{"meta": map[string]any{"k": "from A"}}, c)
	deliver(t, b, c)
	requireStates(t, map[string]any{"meta": map[string]any{"k": "from B"}}, a, b, c)
	requireStates(t, a.State(), restarted(t, a))
}

func TestApplyRejectsInvalidMapUpdates(t *testing.T) {
	for name, u := range invalidMapUpdates() {
		t.Run(name, func(t *testing.T) {
			d := NewDoc(2)
			before := stateOf(d)
			if err := d.Apply(encodeUpdate(u)); !errors.Is(err, ErrInvalidUpdate) {
				t.Fatalf("error = %v, want ErrInvalidUpdate", err)
			}
			if got := stateOf(d); !reflect.DeepEqual(got, before) {
				t.Errorf("rejected update changed the document to %v", got)
			}
		})
	}
}

// TestApplyHugeDeletedListRun checks that a deleted list run costs the
// same whatever its length: an update of 2^40 deleted elements applies,
// re-sends and saves without work per element.
func TestApplyHugeDeletedListRun(t *testing.T) {
	d := NewDoc(2)
	must(t, d.Apply(hugeDeletedListRun()))
	requireStates(t, map[string]any{"log": []any{}}, d, restarted(t, d))
	if n := len(d.nested); n != 1 {
		t.Fatalf("%d nested containers, want the one map", n)
	}
	peer := NewDoc(3)
	deliver(t, d, peer)
	requireStates(t, d.State(), peer)
}
