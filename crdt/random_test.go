package crdt

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// The randomized tests drive every container type through the public API:
// edits at random places, nested containers created and edited, updates
// delivered out of order, twice or late, replicas restarted from saved
// state. Edits are steps of the conformance format, applied with the
// conformance runner's applyEdit, so that one edit means the same thing
// here, in the case files and in the reference model below.

// rootNames are the roots the random edits use, with the type each one
// gets when a replica touches it first. "x" gets a random type, so that
// replicas create it concurrently with different types.
var rootNames = []struct {
	name string
	kind Kind
}{{"t", KindText}, {"l", KindList}, {"m", KindMap}, {"c", KindCounter}, {"x", 0}}

// reachable lists a container of a document and the path that reaches it.
type reachable struct {
	path []any
	c    Container
}

// reachableContainers returns every container that State shows, with the
// path to it. Roots that no replica has touched yet are included with the
// kind that rootNames gives them, or a random one for "x".
func reachableContainers(t *testing.T, d *Doc, rng *rand.Rand) []reachable {
	t.Helper()
	var out []reachable
	var walk func(path []any, c Container)
	walk = func(path []any, c Container) {
		out = append(out, reachable{path: path, c: c})
		switch x := c.(type) {
		case *Map:
			for _, k := range x.Keys() {
				v, _ := x.Get(k)
				if n, ok := v.(Container); ok {
					walk(append(slices.Clone(path), k), n)
				}
			}
		case *List:
			for i := range x.Len() {
				v, err := x.Get(i)
				if err != nil {
					t.Fatal(err)
				}
				if n, ok := v.(Container); ok {
					walk(append(slices.Clone(path), i), n)
				}
			}
		}
	}
	for _, r := range rootNames {
		k := r.kind
		if k == 0 {
			k = Kind(1 + rng.IntN(4))
		}
		c, err := rootOf(d, r.name, k)
		if err != nil {
			// Another type holds the name; take that one.
			c = rootHolding(t, d, r.name)
		}
		walk([]any{r.name}, c)
	}
	return out
}

func rootOf(d *Doc, name string, k Kind) (Container, error) {
	switch k {
	case KindText:
		return d.Text(name)
	case KindList:
		return d.List(name)
	case KindMap:
		return d.Map(name)
	}
	return d.Counter(name)
}

// rootHolding returns the root that holds name, whatever its type.
func rootHolding(t *testing.T, d *Doc, name string) Container {
	t.Helper()
	for k := KindText; k <= KindCounter; k++ {
		if c, err := rootOf(d, name, k); err == nil {
			return c
		}
	}
	t.Fatalf("no type is allowed for root %q", name)
	return nil
}

var containerNames = map[Kind]string{KindText: "text", KindList: "list", KindMap: "map", KindCounter: "counter"}

// editMix sets how random edits are drawn.
type editMix struct {
	keys     int // map keys used: "a", "b", ...
	newOneIn int // one in newOneIn inserts and sets creates a container
	kinds    []Kind
}

var (
	// everyEdit spreads edits over all kinds of edit.
	everyEdit = editMix{keys: 3, newOneIn: 3, kinds: []Kind{KindText, KindList, KindMap, KindCounter}}
	// nestedEdits creates maps and texts under few keys, so that
	// replicas often create containers under one key concurrently.
	nestedEdits = editMix{keys: 2, newOneIn: 2, kinds: []Kind{KindMap, KindText}}
)

// randomEdit returns a random valid edit of d as a conformance step.
func randomEdit(t *testing.T, d *Doc, rng *rand.Rand, mix editMix) step {
	// Deeper containers are picked more often, so that edits reach
	// nested containers while their siblings edit the same ones.
	all := reachableContainers(t, d, rng)
	weights := 0
	for _, r := range all {
		weights += 3*len(r.path) - 2
	}
	pick := rng.IntN(weights)
	var r reachable
	for _, r = range all {
		if pick -= 3*len(r.path) - 2; pick < 0 {
			break
		}
	}
	s := step{kind: stepEdit, container: containerNames[r.c.Kind()], path: r.path, limit: -1}
	// Nested containers are created less often than values, so that the
	// tree stays small enough to edit its inner parts too.
	newKind := func() string {
		if len(r.path) < 4 && rng.IntN(mix.newOneIn) == 0 {
			return containerNames[mix.kinds[rng.IntN(len(mix.kinds))]]
		}
		return ""
	}
	switch c := r.c.(type) {
	case *Text:
		n := c.Len()
		if n > 0 && rng.IntN(3) == 0 {
			s.action, s.index = "delete", rng.IntN(n)
			s.count = 1 + rng.IntN(min(n-s.index, 4))
			break
		}
		s.action, s.index, s.value = "insert", rng.IntN(n+1), randomString(rng)
	case *List:
		n := c.Len()
		if n > 0 && rng.IntN(3) == 0 {
			s.action, s.index = "delete", rng.IntN(n)
			s.count = 1 + rng.IntN(min(n-s.index, 3))
			break
		}
		s.action, s.index = "insert", rng.IntN(n+1)
		if s.newType = newKind(); s.newType == "" {
			s.value = randomValue(rng, 0)
		}
	case *Map:
		s.key = string(rune('a' + rng.IntN(mix.keys)))
		if rng.IntN(5) == 0 {
			s.action = "remove"
			break
		}
		s.action = "set"
		if s.newType = newKind(); s.newType == "" {
			s.value = randomValue(rng, 0)
		}
	case *Counter:
		s.action, s.add = "add", int64(rng.IntN(21)-10)
		if rng.IntN(20) == 0 {
			s.add = math.MaxInt64 / 4 // large adds reach the int64 limits
		}
	}
	return s
}

func randomString(rng *rand.Rand) string {
	alphabet := []rune("abxyz \u00e9\U0001F600")
	s := make([]rune, 1+rng.IntN(3))
	for i := range s {
		s[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(s)
}

// randomValue returns a random JSON value in canonical form.
func randomValue(rng *rand.Rand, depth int) any {
	switch n := rng.IntN(10); {
	case n == 0:
		return nil
	case n == 1:
		return rng.IntN(2) == 0
	case n == 2:
		return []int64{0, -1, 7, math.MaxInt64, math.MinInt64}[rng.IntN(5)]
	case n == 3:
		return uint64(math.MaxUint64 - rng.Uint64N(3))
	case n == 4:
		return []float64{0.5, -2.25, 1e300}[rng.IntN(3)]
	case n == 5 && depth < 2:
		out := make([]any, rng.IntN(3))
		for i := range out {
			out[i] = randomValue(rng, depth+1)
		}
		return out
	case n == 6 && depth < 2:
		out := make(map[string]any)
		for range rng.IntN(3) {
			out[randomString(rng)] = randomValue(rng, depth+1)
		}
		return out
	}
	return randomString(rng)
}

// mustEdit applies s to d and fails the test on an error. The exception is
// a counter add that would leave the int64 range: its error is returned.
func mustEdit(t *testing.T, d *Doc, s step) error {
	t.Helper()
	err := applyEdit(d, s)
	if err != nil && s.action != "add" {
		t.Fatalf("edit %+v on replica %d: %v", s, d.Replica(), err)
	}
	return err
}

// TestRandomContainersConverge lets four replicas edit every container
// type, nested ones included, while exchanging updates in random order,
// with duplicates, partial delivery and restarts, then checks that they
// converge and that a saved and loaded copy agrees.
func TestRandomContainersConverge(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			randomContainerSession(t, seed, 4, 120)
		})
	}
}

func randomContainerSession(t *testing.T, seed uint64, replicas, edits int) *Doc {
	rng := rand.New(rand.NewPCG(seed, 7))
	docs := make([]*Doc, replicas)
	for i := range docs {
		docs[i] = NewDoc(ReplicaID(rng.Uint64()))
	}
	var updates [][]byte
	holds := make([]map[int]bool, replicas)
	for i := range holds {
		holds[i] = make(map[int]bool)
	}

	for range edits {
		i := rng.IntN(replicas)
		mustEdit(t, docs[i], randomEdit(t, docs[i], rng, everyEdit))
		if rng.IntN(2) == 0 {
			if u := docs[i].Commit(); u != nil {
				updates = append(updates, u)
				holds[i][len(updates)-1] = true
			}
		}

		switch rng.IntN(6) {
		case 0: // deliver a random subset, in random order, some twice
			from, to := rng.IntN(replicas), rng.IntN(replicas)
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
						t.Fatalf("apply update %d to replica %d: %v", u, to, err)
					}
				}
				holds[to][u] = true
			}
		case 1: // sync two replicas by version vector
			from, to := rng.IntN(replicas), rng.IntN(replicas)
			if from != to {
				deliver(t, docs[from], docs[to])
			}
		case 2: // restart one replica, keeping its id
			j := rng.IntN(replicas)
			docs[j] = restarted(t, docs[j])
		}
	}

	for _, d := range docs {
		d.Commit()
	}
	syncAll(t, docs...)
	want := docs[0].State()
	for _, d := range docs {
		if got := d.State(); !reflect.DeepEqual(got, want) {
			t.Fatalf("replica %d has state\n%v\nreplica %d has\n%v", d.Replica(), got, docs[0].Replica(), want)
		}
		if d.HeldBack() != 0 {
			t.Errorf("replica %d still holds back %d updates", d.Replica(), d.HeldBack())
		}
	}
	if got := restarted(t, docs[1]).State(); !reflect.DeepEqual(got, want) {
		t.Errorf("loaded state\n%v\nwant\n%v", got, want)
	}

	// A fresh replica that gets the whole history as one update, and one
	// that gets it from a loaded copy, reach the same state.
	for _, from := range []*Doc{docs[replicas-1], restarted(t, docs[replicas-2])} {
		fresh := NewDoc(ReplicaID(rng.Uint64()))
		deliver(t, from, fresh)
		if got := fresh.State(); !reflect.DeepEqual(got, want) {
			t.Errorf("fresh replica has state\n%v\nwant\n%v", got, want)
		}
	}
	return docs[0]
}

// TestRandomNestedMerges runs rounds in which replicas that hold the same
// updates create and edit nested containers under few keys at once, so
// that concurrent creations merge, and checks that they converge.
func TestRandomNestedMerges(t *testing.T) {
	merges := 0
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 13))
		docs := []*Doc{NewDoc(ReplicaID(rng.Uint64())), NewDoc(ReplicaID(rng.Uint64())), NewDoc(ReplicaID(rng.Uint64()))}
		for range 12 {
			for _, d := range docs {
				for range 1 + rng.IntN(3) {
					mustEdit(t, d, randomEdit(t, d, rng, nestedEdits))
				}
				d.Commit()
			}
			if rng.IntN(3) == 0 {
				j := rng.IntN(len(docs))
				docs[j] = restarted(t, docs[j])
			}
			syncAll(t, docs...)
		}
		want := docs[0].State()
		for _, d := range docs[1:] {
			if got := d.State(); !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d: replica %d has state\n%v\nreplica %d has\n%v", seed, d.Replica(), got, docs[0].Replica(), want)
			}
		}
		for id, c := range docs[0].nested {
			if c.id != id {
				merges++
			}
		}
	}
	if merges == 0 {
		t.Errorf("no concurrent creations merged; the test no longer covers merging")
	}
	t.Logf("%d creations merged into containers of concurrent ones", merges)
}

// restarted saves d and loads it as the same replica, checking that the
// state, version and held-back updates survive and that saving the loaded
// copy gives the same bytes.
func restarted(t *testing.T, d *Doc) *Doc {
	t.Helper()
	saved, err := d.Save()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(saved, d.Replica())
	if err != nil {
		t.Fatalf("load replica %d: %v", d.Replica(), err)
	}
	if got, want := loaded.State(), d.State(); !reflect.DeepEqual(got, want) {
		t.Fatalf("state after restart\n%v\nbefore\n%v", got, want)
	}
	if got, want := loaded.Version(), d.Version(); !reflect.DeepEqual(got, want) {
		t.Fatalf("version after restart %v, before %v", got, want)
	}
	if got, want := loaded.HeldBack(), d.HeldBack(); got != want {
		t.Fatalf("%d held-back updates after restart, %d before", got, want)
	}
	again, err := loaded.Save()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again, saved) && debugHook != nil {
		debugHook(saved, again)
	}
	if !slices.Equal(again, saved) {
		t.Fatalf("saving a loaded document gives other bytes (%d, before %d)", len(again), len(saved))
	}
	return loaded
}

var debugHook func(a, b []byte)

// TestRandomContainersMatchModel makes random edits with no concurrency:
// each edit is made on a random replica that has every earlier update
// first. Every replica must then show exactly what a plain JSON model
// shows after the same edits.
func TestRandomContainersMatchModel(t *testing.T) {
	for seed := range uint64(25) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 11))
			docs := []*Doc{NewDoc(1), NewDoc(2), NewDoc(3)}
			model := newJSONModel()
			for range 150 {
				i := rng.IntN(len(docs))
				for _, other := range docs {
					deliver(t, other, docs[i])
				}
				s := randomEdit(t, docs[i], rng, everyEdit)
				err := mustEdit(t, docs[i], s)
				if err := model.apply(s); err != nil {
					t.Fatalf("model: %v", err)
				}
				if s.action == "add" && (err != nil) != model.overflowed {
					t.Fatalf("counter add %d: error %v, model overflow %v", s.add, err, model.overflowed)
				}
				if rng.IntN(8) == 0 {
					docs[i] = restarted(t, docs[i])
				}
				docs[i].Commit()
				if got, want := docs[i].State(), model.state(); !reflect.DeepEqual(got, want) {
					t.Fatalf("after %+v replica has\n%v\nmodel has\n%v", s, got, want)
				}
			}
			syncAll(t, docs...)
			for _, d := range docs {
				if got, want := d.State(), model.state(); !reflect.DeepEqual(got, want) {
					t.Fatalf("replica %d has\n%v\nmodel has\n%v", d.Replica(), got, want)
				}
			}
		})
	}
}

// jsonModel is a deliberately plain model of a document without
// concurrency: Go values, containers as pointers to small structs.
type jsonModel struct {
	roots      map[string]any
	overflowed bool // the last counter add left the int64 range
}

type (
	modelText    struct{ runes []rune }
	modelList    struct{ elems []any }
	modelMap     struct{ keys map[string]any }
	modelCounter struct{ n int64 }
)

func newJSONModel() *jsonModel { return &jsonModel{roots: make(map[string]any)} }

func newModelContainer(k string) any {
	switch k {
	case "text":
		return &modelText{}
	case "list":
		return &modelList{}
	case "map":
		return &modelMap{keys: make(map[string]any)}
	}
	return &modelCounter{}
}

func (m *jsonModel) apply(s step) error {
	name := s.path[0].(string)
	c, ok := m.roots[name]
	if !ok {
		kind := s.container
		if len(s.path) > 1 {
			return fmt.Errorf("path %v through a missing root", s.path)
		}
		c = newModelContainer(kind)
		m.roots[name] = c
	}
	for _, e := range s.path[1:] {
		switch x := c.(type) {
		case *modelMap:
			c = x.keys[e.(string)]
		case *modelList:
			c = x.elems[e.(int)]
		}
	}
	value := s.value
	if s.newType != "" {
		value = newModelContainer(s.newType)
	} else if value != nil {
		var err error
		if value, err = normalizeValue(value, 0); err != nil {
			return err
		}
	}
	m.overflowed = false
	switch x := c.(type) {
	case *modelText:
		if s.action == "insert" {
			x.runes = slices.Insert(x.runes, s.index, []rune(s.value.(string))...)
		} else {
			x.runes = slices.Delete(x.runes, s.index, s.index+s.count)
		}
	case *modelList:
		if s.action == "insert" {
			x.elems = slices.Insert(x.elems, s.index, value)
		} else {
			x.elems = slices.Delete(x.elems, s.index, s.index+s.count)
		}
	case *modelMap:
		if s.action == "remove" {
			delete(x.keys, s.key)
		} else {
			x.keys[s.key] = value
		}
	case *modelCounter:
		sum := x.n + s.add
		if (s.add > 0 && sum < x.n) || (s.add < 0 && sum > x.n) {
			m.overflowed = true
			return nil
		}
		x.n = sum
	default:
		return fmt.Errorf("path %v reaches %T", s.path, c)
	}
	return nil
}

func (m *jsonModel) state() map[string]any {
	out := make(map[string]any)
	for k, v := range m.roots {
		out[k] = modelValue(v)
	}
	return out
}

func modelValue(v any) any {
	switch x := v.(type) {
	case *modelText:
		return string(x.runes)
	case *modelList:
		out := make([]any, len(x.elems))
		for i, e := range x.elems {
			out[i] = modelValue(e)
		}
		return out
	case *modelMap:
		out := make(map[string]any, len(x.keys))
		for k, e := range x.keys {
			out[k] = modelValue(e)
		}
		return out
	case *modelCounter:
		return x.n
	}
	return cloneValue(v)
}
