package crdt

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
)

// commitsOf makes one update per edit on a fresh replica: "abc" typed, then
// "b" deleted.
func commitsOf(t testing.TB, replica ReplicaID) (*Doc, [][]byte) {
	t.Helper()
	d, text := newText(t, replica)
	var updates [][]byte
	for i, r := range "abc" {
		mustInsert(t, text, i, string(r))
		updates = append(updates, d.Commit())
	}
	mustDelete(t, text, 1, 1)
	updates = append(updates, d.Commit())
	return d, updates
}

func TestApplyHoldsBackUntilCausesArrive(t *testing.T) {
	_, updates := commitsOf(t, 1)
	b := NewDoc(2)
	for i := len(updates) - 1; i >= 1; i-- {
		if err := b.Apply(updates[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.HeldBack(); got != 3 {
		t.Fatalf("HeldBack = %d, want 3", got)
	}
	if got := b.State(); len(got) != 0 {
		t.Fatalf("state before the first update = %v, want empty", got)
	}
	if err := b.Apply(updates[0]); err != nil {
		t.Fatal(err)
	}
	if got := b.HeldBack(); got != 0 {
		t.Errorf("HeldBack = %d after the first update arrived, want 0", got)
	}
	if got := b.State()["body"]; got != "ac" {
		t.Errorf("text = %q, want %q", got, "ac")
	}
}

func TestApplyHoldsBackUntilThirdReplica(t *testing.T) {
	a, b, c := NewDoc(1), NewDoc(2), NewDoc(3)
	mustInsert(t, textOf(t, a), 0, "one")
	fromA := a.Commit()
	if err := b.Apply(fromA); err != nil {
		t.Fatal(err)
	}
	mustInsert(t, textOf(t, b), 3, " two")
	fromB := b.Commit()

	if err := c.Apply(fromB); err != nil {
		t.Fatal(err)
	}
	if c.HeldBack() != 1 {
		t.Fatalf("update that depends on A's text: HeldBack = %d, want 1", c.HeldBack())
	}
	if err := c.Apply(fromA); err != nil {
		t.Fatal(err)
	}
	if got := c.State()["body"]; got != "one two" || c.HeldBack() != 0 {
		t.Errorf("text = %q with %d held back, want %q with none", got, c.HeldBack(), "one two")
	}
}

func TestApplyDuplicates(t *testing.T) {
	a, updates := commitsOf(t, 1)
	b := NewDoc(2)
	for range 2 {
		for _, u := range updates {
			if err := b.Apply(u); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := b.State()["body"]; got != "ac" {
		t.Errorf("text = %q, want %q", got, "ac")
	}
	if got, want := b.Version(), a.Version(); !reflect.DeepEqual(got, want) {
		t.Errorf("version = %v, want %v", got, want)
	}

	// A held-back update delivered twice is held once.
	c := NewDoc(3)
	for range 2 {
		if err := c.Apply(updates[3]); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.HeldBack(); got != 1 {
		t.Errorf("HeldBack = %d after one update twice, want 1", got)
	}
}

func TestApplyOverlappingUpdates(t *testing.T) {
	a, updates := commitsOf(t, 1)
	b := NewDoc(2)
	if err := b.Apply(updates[0]); err != nil {
		t.Fatal(err)
	}
	if err := b.Apply(updates[1]); err != nil {
		t.Fatal(err)
	}
	// One update with all of A's history overlaps what b has.
	all := a.UpdatesSince(nil)
	if len(all) != 1 {
		t.Fatalf("UpdatesSince(nil) returned %d updates, want 1", len(all))
	}
	if err := b.Apply(all[0]); err != nil {
		t.Fatal(err)
	}
	if got := b.State()["body"]; got != "ac" {
		t.Errorf("text = %q, want %q", got, "ac")
	}
	if got, want := b.Version(), a.Version(); !reflect.DeepEqual(got, want) {
		t.Errorf("version = %v, want %v", got, want)
	}
}

func TestUpdatesSince(t *testing.T) {
	a, updates := commitsOf(t, 1)
	if got := a.UpdatesSince(a.Version()); got != nil {
		t.Errorf("UpdatesSince(own version) returned %d updates, want none", len(got))
	}

	b := NewDoc(2)
	if err := b.Apply(updates[0]); err != nil {
		t.Fatal(err)
	}
	mustInsert(t, textOf(t, b), 1, "X")
	b.Commit()
	deliver(t, a, b)
	deliver(t, b, a)
	// X and A's "bc" were both typed right after "a"; the lower replica id
	// goes first, so X follows all of A's run.
	if got := requireConverged(t, a, b); got != "acX" {
		t.Errorf("text = %q, want %q", got, "acX")
	}

	// Held-back updates are passed on too, so a relay replica can forward
	// what it cannot apply yet.
	c := NewDoc(3)
	if err := c.Apply(updates[2]); err != nil {
		t.Fatal(err)
	}
	forwarded := c.UpdatesSince(nil)
	if len(forwarded) != 1 {
		t.Fatalf("UpdatesSince of a replica with one held-back update returned %d, want 1", len(forwarded))
	}
	e := NewDoc(4)
	for _, u := range append([][]byte{updates[0], updates[1]}, forwarded...) {
		if err := e.Apply(u); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.State()["body"]; got != "abc" {
		t.Errorf("text = %q, want %q", got, "abc")
	}
}

func TestCommitCarriesOnlyLocalEdits(t *testing.T) {
	a, b := NewDoc(1), NewDoc(2)
	mustInsert(t, textOf(t, a), 0, "remote")
	if err := b.Apply(a.Commit()); err != nil {
		t.Fatal(err)
	}
	if u := b.Commit(); u != nil {
		t.Fatalf("Commit after only remote updates returned %d bytes, want nil", len(u))
	}
	mustInsert(t, textOf(t, b), 0, "local ")
	u, err := decodeUpdate(b.Commit())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range u.ops {
		if o.id.replica != 2 {
			t.Errorf("Commit carried an operation of replica %d", o.id.replica)
		}
	}
	if got := u.deps[1]; got == 0 {
		t.Errorf("Commit does not depend on the remote text it was typed next to: deps %v", u.deps)
	}
}

// stateOf captures everything that Apply must leave alone on error.
func stateOf(d *Doc) [3]any {
	return [3]any{d.State(), d.Version(), d.HeldBack()}
}

func TestApplyTruncatedUpdates(t *testing.T) {
	a, _ := commitsOf(t, 1)
	update := a.UpdatesSince(nil)[0]
	for n := range len(update) {
		d := NewDoc(2)
		err := d.Apply(update[:n])
		if !errors.Is(err, ErrInvalidUpdate) {
			t.Fatalf("prefix of %d of %d bytes: error = %v, want ErrInvalidUpdate", n, len(update), err)
		}
		if got := stateOf(d); !reflect.DeepEqual(got, stateOf(NewDoc(2))) {
			t.Fatalf("prefix of %d bytes changed the document: %v", n, got)
		}
	}
}

func TestApplyCorruptedUpdates(t *testing.T) {
	a, updates := commitsOf(t, 1)
	base := func() *Doc {
		d := NewDoc(2)
		for _, u := range updates[:2] {
			if err := d.Apply(u); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	update := a.UpdatesSince(nil)[0]
	rng := rand.New(rand.NewPCG(3, 4))
	rejected := 0
	for range 2000 {
		corrupt := append([]byte(nil), update...)
		for range 1 + rng.IntN(3) {
			corrupt[rng.IntN(len(corrupt))] ^= byte(1 + rng.IntN(255))
		}
		d := base()
		before := stateOf(d)
		if err := d.Apply(corrupt); err != nil {
			rejected++
			if got := stateOf(d); !reflect.DeepEqual(got, before) {
				t.Fatalf("rejected update changed the document from %v to %v", before, got)
			}
		}
	}
	if rejected == 0 {
		t.Errorf("no corrupted update was rejected")
	}
}

func TestApplyRejectsUnknownReferences(t *testing.T) {
	a, _ := commitsOf(t, 1)
	cases := map[string]func(u *update){
		"left origin of an unknown replica": func(u *update) { u.ops[0].left = opID{replica: 9, counter: 0} },
		"right origin that is a delete":     func(u *update) { u.ops[len(u.ops)-2].right = opID{replica: 1, counter: 3} },
		"delete target past the inserts": func(u *update) {
			last := &u.ops[len(u.ops)-1]
			last.targets[0].target = opID{replica: 1, counter: 3}
		},
		"origin in a later operation": func(u *update) { u.ops[0].right = opID{replica: 1, counter: 2} },
	}
	for name, corrupt := range cases {
		t.Run(name, func(t *testing.T) {
			u, err := decodeUpdate(a.UpdatesSince(nil)[0])
			if err != nil {
				t.Fatal(err)
			}
			corrupt(u)
			u.deps = VersionVector{}
			d := NewDoc(2)
			err = d.Apply(encodeUpdate(u))
			if !errors.Is(err, ErrInvalidUpdate) {
				t.Fatalf("error = %v, want ErrInvalidUpdate", err)
			}
			if got := stateOf(d); !reflect.DeepEqual(got, stateOf(NewDoc(2))) {
				t.Errorf("rejected update changed the document: %v", got)
			}
		})
	}
}

func TestUpdateEncodingRoundTrip(t *testing.T) {
	a, _ := commitsOf(t, 1)
	mustInsert(t, textOf(t, a), 0, "h\u00e9 \U0001F600")
	other, err := a.Text("title")
	if err != nil {
		t.Fatal(err)
	}
	mustInsert(t, other, 0, "Week 1")
	raw := a.UpdatesSince(nil)[0]
	u, err := decodeUpdate(raw)
	if err != nil {
		t.Fatal(err)
	}
	if again := encodeUpdate(u); string(again) != string(raw) {
		t.Errorf("decode then encode changed the update:\n%x\n%x", raw, again)
	}
	if len(u.containers) != 2 {
		t.Errorf("update has %d containers, want 2", len(u.containers))
	}
}

func TestApplyRejectsRightOriginBeforeLeft(t *testing.T) {
	a := NewDoc(1)
	mustInsert(t, textOf(t, a), 0, "abc")
	b := NewDoc(2)
	if err := b.Apply(a.Commit()); err != nil {
		t.Fatal(err)
	}
	u := &update{
		deps:       VersionVector{1: 3},
		containers: []containerRef{{kind: KindText, name: "body", creator: noID}},
		ops: []op{{
			kind:    opInsert,
			id:      opID{replica: 3, counter: 0},
			length:  1,
			left:    opID{replica: 1, counter: 2},
			right:   opID{replica: 1, counter: 0},
			content: []rune("x"),
		}},
	}
	before := stateOf(b)
	if err := b.Apply(encodeUpdate(u)); !errors.Is(err, ErrInvalidUpdate) {
		t.Fatalf("error = %v, want ErrInvalidUpdate", err)
	}
	if got := stateOf(b); !reflect.DeepEqual(got, before) {
		t.Errorf("rejected update changed the document from %v to %v", before, got)
	}
}

// TestApplyOriginsEqualInOneUpdate covers an insert whose right origin is
// its left origin, inserted earlier in the same update. It goes after its
// left origin, so that the document saves and loads, and a replica that
// receives the re-sent history places it the same way.
func TestApplyOriginsEqualInOneUpdate(t *testing.T) {
	d := NewDoc(2)
	if err := d.Apply(originsEqualInOneUpdate()); err != nil {
		t.Fatal(err)
	}
	if got := d.State()["body"]; got != "abx" {
		t.Errorf("text = %q, want %q", got, "abx")
	}
	loaded := restarted(t, d)
	peer := NewDoc(3)
	deliver(t, loaded, peer)
	if got := peer.State()["body"]; got != "abx" {
		t.Errorf("peer text = %q, want %q", got, "abx")
	}
}
