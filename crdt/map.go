package crdt

import (
	"cmp"
	"fmt"
	"slices"
	"unicode/utf8"
)

// Map is a map container: string keys, each holding a JSON value or a
// nested container. Its methods lock the document, so a Map is as safe for
// concurrent use as its Doc.
//
// Each key is a multi-value register. A set or remove replaces exactly the
// values its replica had seen under the key. So a value set concurrently
// survives a remove, and concurrent sets all stay. The key shows the one
// with the highest Lamport time, ties broken by the higher replica id, and
// GetAll returns all of them. Containers of one type that replicas create
// concurrently under one key, at the same Lamport time, are one container
// whose contents merge.
type Map container

// Map returns the root map called name, creating it if the document has
// none. Like Text, it returns ErrTypeMismatch if the name belongs to a
// root of another type and ErrInvalidUTF8 for a name that is not UTF-8.
func (d *Doc) Map(name string) (*Map, error) {
	if !utf8.ValidString(name) {
		return nil, fmt.Errorf("map name %q: %w", name, ErrInvalidUTF8)
	}

	c, err := d.root(name, KindMap)
	if err != nil {
		return nil, err
	}
	return (*Map)(c), nil
}

// mapKey is the state of one key of a map.
type mapKey struct {
	// lamport is the highest Lamport time of the operations on the key
	// applied here; a local operation gets one more.
	lamport uint64
	// live lists the sets that no applied operation has replaced.
	live []*atom
	// created lists the containers ever created under the key, one per
	// kind and Lamport time, so that a concurrent creation with the same
	// kind and time finds the container to merge into.
	created []*container
}

// winner returns the live set that the key shows, or nil.
func (mk *mapKey) winner() *atom {
	if mk == nil || len(mk.live) == 0 {
		return nil
	}
	return slices.MaxFunc(mk.live, compareSets)
}

// compareSets orders concurrent sets of one key: the higher Lamport time
// wins, then the higher replica id.
func compareSets(a, b *atom) int {
	if c := cmp.Compare(a.lamport, b.lamport); c != 0 {
		return c
	}
	return compareIDs(a.id, b.id)
}

func (m *Map) base() *container { return (*container)(m) }

// Kind returns KindMap.
func (m *Map) Kind() Kind { return KindMap }

// Value returns the map as a map[string]any, nested containers as their
// values.
func (m *Map) Value() any {
	return m.valueMap()
}

func (m *Map) valueMap() map[string]any {
	out := make(map[string]any)
	for k, mk := range m.keys {
		if w := mk.winner(); w != nil {
			out[k] = stateValue(w.value)
		}
	}
	return out
}

// Get returns the value of key: a copy of a plain value or the handle of
// a nested container, and whether the key is set.
func (m *Map) Get(key string) (any, bool) {
	w := m.keys[key].winner()
	if w == nil {
		return nil, false
	}
	return cloneValue(w.value), true
}

// GetAll returns every value that key holds, the one Get returns first:
// more than one when replicas set the key concurrently and no later set
// or remove has replaced them. Nothing a replica set is lost silently.
func (m *Map) GetAll(key string) []any {
	mk := m.keys[key]
	if mk == nil {
		return nil
	}
	live := slices.Clone(mk.live)
	slices.SortFunc(live, func(a, b *atom) int { return compareSets(b, a) })
	var out []any
	for _, a := range live {
		// Merged containers are one value however many sets made them.
		if c, ok := a.value.(*container); ok && slices.ContainsFunc(out, func(v any) bool {
			h, ok := v.(Container)
			return ok && h.base() == c
		}) {
			continue
		}
		out = append(out, cloneValue(a.value))
	}
	return out
}

// Keys returns the keys that are set, in ascending order.
func (m *Map) Keys() []string {
	var keys []string
	for k, mk := range m.keys {
		if len(mk.live) > 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// Len returns the number of keys that are set.
func (m *Map) Len() int {
	n := 0
	for _, mk := range m.keys {
		if len(mk.live) > 0 {
			n++
		}
	}
	return n
}

// Set sets key to value, a JSON value: nil, bool, a Go integer or float
// type, json.Number, string, or a slice or string-keyed map of such
// values. Integers keep their exact value across the int64 and uint64
// ranges; other numbers become float64. It returns an error wrapping
// ErrInvalidValue or ErrInvalidUTF8, and changes nothing, for anything
// else.
func (m *Map) Set(key string, value any) error {
	if err := m.checkEdit(key); err != nil {
		return err
	}
	v, err := normalizeValue(value, 0)
	if err != nil {
		return fmt.Errorf("set key %q of %s: %w: %w", key, m.base().describe(), ErrInvalidValue, err)
	}

	m.doc.applyLocalAtom(&atom{kind: opMapSet, owner: m.base(), key: key, value: v})
	return nil
}

// SetNew sets key to a new, empty container of kind k and returns its
// handle. If another replica creates a container of the same kind under
// the same key concurrently, at the same Lamport time, both become one
// container and their contents merge. A later SetNew, made after seeing
// the key's container, replaces it with a fresh one.
func (m *Map) SetNew(key string, k Kind) (Container, error) {
	if !k.valid() {
		return nil, fmt.Errorf("set key %q of %s to a container of %s: use KindText, KindList, KindMap or KindCounter: %w",
			key, m.base().describe(), k, ErrInvalidValue)
	}
	if err := m.checkEdit(key); err != nil {
		return nil, err
	}

	a := &atom{kind: opMapSet, owner: m.base(), key: key, value: kindMarker(k)}
	m.doc.applyLocalAtom(a)
	return a.value.(*container).handle(), nil
}

// Remove removes key: the values its replica has seen under it. A value
// set concurrently by another replica survives. Removing a key that is not
// set is an operation too, which makes the map appear in State.
func (m *Map) Remove(key string) error {
	if err := m.checkEdit(key); err != nil {
		return err
	}

	m.doc.applyLocalAtom(&atom{kind: opMapRemove, owner: m.base(), key: key})
	return nil
}

func (m *Map) checkEdit(key string) error {
	if !utf8.ValidString(key) {
		return fmt.Errorf("key %q of %s: %w", key, m.base().describe(), ErrInvalidUTF8)
	}
	if err := m.base().checkEditable(); err != nil {
		return err
	}
	if mk := m.keys[key]; mk != nil && mk.lamport >= maxCounter {
		return fmt.Errorf("key %q of %s has reached the maximum Lamport time: %w", key, m.base().describe(), ErrCounterOverflow)
	}
	return m.doc.checkOwnCounter(1)
}

// applyMapOp applies a set or remove to its map. A set whose value is a
// kindMarker creates the container, or joins the one that a concurrent
// set with the same kind and Lamport time created.
func (d *Doc) applyMapOp(a *atom) {
	m := a.owner
	mk := m.keys[a.key]
	if mk == nil {
		mk = &mapKey{}
		m.keys[a.key] = mk
	}
	mk.lamport = max(mk.lamport, a.lamport)

	for _, p := range a.preds {
		if i := slices.IndexFunc(mk.live, func(e *atom) bool { return e.id == p }); i >= 0 {
			mk.live = slices.Delete(mk.live, i, i+1)
		}
		if pa := d.replicas[p.replica].findAtom(p.counter); pa != nil {
			pa.replaced = true
			// The replaced value can never show again, so it is dropped,
			// unless it is a container that late updates may still edit
			// or a local set that the next Commit sends without a.
			if !inSpans(d.uncommitted, pa.id) || inSpans(d.uncommitted, a.id) {
				pa.dropValue()
			}
		}
	}
	if a.kind == opMapRemove {
		return
	}

	if k, ok := a.value.(kindMarker); ok {
		c := mk.findCreated(Kind(k), a.lamport)
		if c == nil {
			// Load has made the container already, from the saved
			// container table.
			if c = d.nested[a.id]; c == nil {
				c = d.newNested(Kind(k), a.id, m)
			}
			c.parent = m
			c.key = a.key
			c.lamport = a.lamport
			mk.created = append(mk.created, c)
		} else {
			d.nested[a.id] = c
		}
		a.value = c
	}
	mk.live = append(mk.live, a)
}

// dropValue drops the value of a replaced set, unless it is a container.
func (a *atom) dropValue() {
	if _, ok := a.value.(*container); !ok {
		a.value = dropped
	}
}

// findCreated returns the container of kind k created under the key at
// Lamport time lamport, or nil.
func (mk *mapKey) findCreated(k Kind, lamport uint64) *container {
	if mk == nil {
		return nil
	}
	for _, c := range mk.created {
		if c.kind == k && c.lamport == lamport {
			return c
		}
	}
	return nil
}
