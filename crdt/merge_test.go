package crdt

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// deliver applies every update that from has and to lacks.
func deliver(t *testing.T, from, to *Doc) {
	t.Helper()
	for _, u := range from.UpdatesSince(to.Version()) {
		if err := to.Apply(u); err != nil {
			t.Fatalf("apply update from replica %d to %d: %v", from.Replica(), to.Replica(), err)
		}
	}
}

func syncAll(t *testing.T, docs ...*Doc) {
	t.Helper()
	for range 2 {
		for _, a := range docs {
			for _, b := range docs {
				if a != b {
					deliver(t, a, b)
				}
			}
		}
	}
}

func textOf(t *testing.T, d *Doc) *Text {
	t.Helper()
	text, err := d.Text("body")
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// requireConverged checks that all docs have the same text and returns it.
func requireConverged(t *testing.T, docs ...*Doc) string {
	t.Helper()
	want := textOf(t, docs[0]).String()
	for _, d := range docs[1:] {
		if got := textOf(t, d).String(); got != want {
			t.Fatalf("replica %d has %q, replica %d has %q", d.Replica(), got, docs[0].Replica(), want)
		}
	}
	return want
}

func TestMergeConcurrentInsertsSamePosition(t *testing.T) {
	for _, ids := range [][2]ReplicaID{{1, 2}, {2, 1}} {
		a, b := NewDoc(ids[0]), NewDoc(ids[1])
		mustInsert(t, textOf(t, a), 0, "Hello")
		syncAll(t, a, b)
		mustInsert(t, textOf(t, a), 5, " world")
		mustInsert(t, textOf(t, b), 5, " there")
		syncAll(t, a, b)
		got := requireConverged(t, a, b)
		if got != "Hello world there" && got != "Hello there world" {
			t.Errorf("ids %v: merged %q; each run must stay whole", ids, got)
		}
	}
}

// typeForwards types s one code point per update at pos, as a user does.
func typeForwards(t *testing.T, d *Doc, pos int, s string, updates *[][]byte) {
	t.Helper()
	for i, r := range []rune(s) {
		mustInsert(t, textOf(t, d), pos+i, string(r))
		*updates = append(*updates, d.Commit())
	}
}

// typeBackwards types s from its last code point to its first, each one
// inserted at pos, in front of the previous one.
func typeBackwards(t *testing.T, d *Doc, pos int, s string, updates *[][]byte) {
	t.Helper()
	runes := []rune(s)
	for i := len(runes) - 1; i >= 0; i-- {
		mustInsert(t, textOf(t, d), pos, string(runes[i]))
		*updates = append(*updates, d.Commit())
	}
}

func TestMergeRunsDoNotInterleave(t *testing.T) {
	typing := map[string]func(*testing.T, *Doc, int, string, *[][]byte){
		"forwards":  typeForwards,
		"backwards": typeBackwards,
	}
	for name, typeRun := range typing {
		for _, ids := range [][2]ReplicaID{{1, 2}, {2, 1}} {
			t.Run(fmt.Sprintf("%s/%d-%d", name, ids[0], ids[1]), func(t *testing.T) {
				a, b := NewDoc(ids[0]), NewDoc(ids[1])
				mustInsert(t, textOf(t, a), 0, "[]")
				syncAll(t, a, b)

				var fromA, fromB [][]byte
				typeRun(t, a, 1, "abcdef", &fromA)
				typeRun(t, b, 1, "uvwxyz", &fromB)
				// Deliver one keystroke at a time, alternating, so that
				// an interleaving merge would show.
				for i := range fromA {
					if err := b.Apply(fromA[i]); err != nil {
						t.Fatal(err)
					}
					if err := a.Apply(fromB[i]); err != nil {
						t.Fatal(err)
					}
				}
				got := requireConverged(t, a, b)
				if got != "[abcdefuvwxyz]" && got != "[uvwxyzabcdef]" {
					t.Errorf("merged %q; the two runs must not interleave", got)
				}
			})
		}
	}
}

// TestMergeThreeReplicas covers the case where a plain left-origin rule
// (RGA) or Yjs's original rule splits text: B types "nnn" in front of
// A's "rrr", which B had seen, while C, who had seen neither, types "ooo"
// at the same place. B's text must stay right before A's, whatever the
// replica ids and delivery order.
func TestMergeThreeReplicas(t *testing.T) {
	idSets := [][3]ReplicaID{{1, 2, 3}, {1, 3, 2}, {2, 1, 3}, {2, 3, 1}, {3, 1, 2}, {3, 2, 1}}
	for _, ids := range idSets {
		for _, cFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("ids=%v/cFirst=%v", ids, cFirst), func(t *testing.T) {
				a, b, c := NewDoc(ids[0]), NewDoc(ids[1]), NewDoc(ids[2])
				mustInsert(t, textOf(t, a), 0, "rrr")
				deliver(t, a, b)
				mustInsert(t, textOf(t, c), 0, "ooo")
				mustInsert(t, textOf(t, b), 0, "nnn")
				if cFirst {
					deliver(t, c, a)
					deliver(t, c, b)
				}
				syncAll(t, a, b, c)
				got := requireConverged(t, a, b, c)
				if got != "ooonnnrrr" && got != "nnnrrrooo" {
					t.Errorf("merged %q; want nnn right before rrr and ooo whole", got)
				}
			})
		}
	}
}

func TestMergeDeleteKeepsConcurrentInsert(t *testing.T) {
	a, b := NewDoc(1), NewDoc(2)
	mustInsert(t, textOf(t, a), 0, "abcdef")
	syncAll(t, a, b)
	mustDelete(t, textOf(t, a), 1, 3)
	mustInsert(t, textOf(t, b), 2, "X")
	syncAll(t, a, b)
	if got := requireConverged(t, a, b); got != "aXef" {
		t.Errorf("merged %q, want %q", got, "aXef")
	}
}

func TestMergeConcurrentDeletesOfOneRange(t *testing.T) {
	a, b := NewDoc(1), NewDoc(2)
	mustInsert(t, textOf(t, a), 0, "0123456789")
	syncAll(t, a, b)
	mustDelete(t, textOf(t, a), 2, 5) // 2..6
	mustDelete(t, textOf(t, b), 4, 5) // 4..8
	syncAll(t, a, b)
	if got := requireConverged(t, a, b); got != "019" {
		t.Errorf("merged %q, want %q", got, "019")
	}
}

// refChar is one code point in refText.
type refChar struct {
	id, left, right opID
	r               rune
	deleted         bool
}

// refText is a deliberately simple model of the merge rule: one entry per
// code point, linear searches, the FugueMax list rule written out code
// point by code point. The random tests check that the run-based
// implementation orders text exactly like it.
type refText struct {
	chars []refChar
}

func (m *refText) indexOf(id opID) int {
	for i := range m.chars {
		if m.chars[i].id == id {
			return i
		}
	}
	panic(fmt.Sprintf("model has no code point %v", id))
}

func (m *refText) insert(c refChar) {
	left := -1
	if !c.left.isNone() {
		left = m.indexOf(c.left)
	}
	right := len(m.chars)
	if !c.right.isNone() {
		right = m.indexOf(c.right)
	}
	dest := left + 1
	scanning := false
	for i := left + 1; ; i++ {
		if !scanning {
			dest = i
		}
		if i == len(m.chars) || i == right {
			break
		}
		o := m.chars[i]
		oLeft := -1
		if !o.left.isNone() {
			oLeft = m.indexOf(o.left)
		}
		if oLeft < left {
			break
		}
		if oLeft > left {
			continue
		}
		oRight := len(m.chars)
		if !o.right.isNone() {
			oRight = m.indexOf(o.right)
		}
		if oRight < right {
			scanning = true
		} else if oRight == right && compareIDs(c.id, o.id) < 0 {
			break
		} else {
			scanning = false
		}
	}
	m.chars = slices.Insert(m.chars, dest, c)
}

func (m *refText) String() string {
	var b strings.Builder
	for _, c := range m.chars {
		if !c.deleted {
			b.WriteRune(c.r)
		}
	}
	return b.String()
}

// modelOf replays the whole history of d, in the order d applied it, into
// a refText, one code point at a time.
func modelOf(t *testing.T, d *Doc) string {
	t.Helper()
	var m refText
	for _, raw := range d.UpdatesSince(nil) {
		u, err := decodeUpdate(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range u.ops {
			switch o.kind {
			case opInsert, opInsertDeleted:
				for k := range int(o.length) {
					c := refChar{id: o.id.plus(k), left: o.left, right: o.right, deleted: o.kind == opInsertDeleted}
					if k > 0 {
						c.left = o.id.plus(k - 1)
					}
					if o.kind == opInsert {
						c.r = o.content[k]
					}
					m.insert(c)
				}
			case opDelete:
				for _, run := range o.targets {
					for c := run.counter; c < run.end(); c++ {
						m.chars[m.indexOf(run.targetAt(c))].deleted = true
					}
				}
			}
		}
	}
	return m.String()
}

// TestMergeRandomConcurrentEdits lets three replicas edit one text while
// exchanging updates in random order, with duplicates, partial delivery and
// restarts, then checks that they converge, that the result matches the
// code-point model, and that a saved and loaded copy agrees.
func TestMergeRandomConcurrentEdits(t *testing.T) {
	for seed := range uint64(30) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			randomSession(t, seed)
		})
	}
}

func randomSession(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	docs := make([]*Doc, 3)
	for i := range docs {
		docs[i] = NewDoc(ReplicaID(rng.Uint64()))
	}
	var updates [][]byte
	holds := make([]map[int]bool, len(docs))
	for i := range holds {
		holds[i] = make(map[int]bool)
	}
	alphabet := []rune("abcxyz\u00e9\U0001F600")

	for range 150 {
		i := rng.IntN(len(docs))
		d := docs[i]
		text := textOf(t, d)
		switch n := text.Len(); {
		case n > 0 && rng.IntN(3) == 0:
			pos := rng.IntN(n)
			mustDelete(t, text, pos, 1+rng.IntN(min(n-pos, 4)))
		default:
			s := make([]rune, 1+rng.IntN(3))
			for j := range s {
				s[j] = alphabet[rng.IntN(len(alphabet))]
			}
			mustInsert(t, text, rng.IntN(n+1), string(s))
		}
		if rng.IntN(2) == 0 {
			if u := d.Commit(); u != nil {
				updates = append(updates, u)
				holds[i][len(updates)-1] = true
			}
		}

		switch rng.IntN(6) {
		case 0: // send a random subset, in random order, some twice
			from, to := rng.IntN(len(docs)), rng.IntN(len(docs))
			if from == to {
				break
			}
			var list []int
			for u := range holds[from] {
				if !holds[to][u] && rng.IntN(2) == 0 {
					list = append(list, u)
				}
			}
			slices.Sort(list)
			rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
			for _, u := range list {
				for range 1 + rng.IntN(2) {
					if err := docs[to].Apply(updates[u]); err != nil {
						t.Fatal(err)
					}
				}
				holds[to][u] = true
			}
		case 1: // sync two replicas by version vector
			from, to := rng.IntN(len(docs)), rng.IntN(len(docs))
			if from != to {
				deliver(t, docs[from], docs[to])
			}
		case 2: // restart one replica
			j := rng.IntN(len(docs))
			saved, err := docs[j].Save()
			if err != nil {
				t.Fatal(err)
			}
			before := docs[j].State()
			if docs[j], err = Load(saved, docs[j].Replica()); err != nil {
				t.Fatal(err)
			}
			if got := docs[j].State(); fmt.Sprint(got) != fmt.Sprint(before) {
				t.Fatalf("restart changed the state from %v to %v", before, got)
			}
		}
	}

	for _, d := range docs {
		d.Commit()
	}
	syncAll(t, docs...)
	got := requireConverged(t, docs...)
	for _, d := range docs {
		if d.HeldBack() != 0 {
			t.Errorf("replica %d still holds back %d updates", d.Replica(), d.HeldBack())
		}
	}
	if want := modelOf(t, docs[0]); got != want {
		t.Errorf("merged text %q, code-point model %q", got, want)
	}
	saved, err := docs[1].Save()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(saved, 77)
	if err != nil {
		t.Fatal(err)
	}
	if s := textOf(t, loaded).String(); s != got {
		t.Errorf("loaded text %q, want %q", s, got)
	}
}
