package crdt

import "fmt"

// Kind is the type of a container.
type Kind uint8

// The container types. The numbers appear in updates and saved states, so
// they never change. When concurrent edits give one root name containers
// of several types, the lowest number wins the name.
const (
	KindText    Kind = 1
	KindList    Kind = 2
	KindMap     Kind = 3
	KindCounter Kind = 4
)

func (k Kind) String() string {
	switch k {
	case KindText:
		return "text"
	case KindList:
		return "list"
	case KindMap:
		return "map"
	case KindCounter:
		return "counter"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

func (k Kind) valid() bool { return k >= KindText && k <= KindCounter }

// Container is a handle to a text, list, map or counter of a document:
// a *Text, *List, *Map or *Counter. Map.Get and List.Get return one for
// a nested container; a type switch or assertion gives the typed handle.
type Container interface {
	// Kind returns the container's type.
	Kind() Kind
	// Value returns the container's content as a JSON-like value, with
	// nested containers in place: a string, []any, map[string]any or
	// int64.
	Value() any

	base() *container
}

// container is the state behind every container handle. The handle types
// Text, List, Map and Counter are conversions of it, so that a handle
// costs no allocation and two handles of one container are equal.
type container struct {
	doc  *Doc
	kind Kind

	// Root containers have a name. Nested containers have the id of the
	// operation that created them, a list element or a map set, and the
	// container that holds them.
	name   string
	id     opID // noID for roots
	parent *container

	// lamport is the Lamport time of the map set that created a nested
	// container. Concurrent creations with the same key, kind and time
	// merge into this container.
	lamport uint64
	key     string

	// touched is set on a root once an operation on it has been applied;
	// only touched roots appear in State. blocked is set on a root when
	// another type has won its name, which makes edits fail.
	touched bool
	blocked bool

	tree tree // text and list: items in document order
	// arena is the current chunk of the code points of a text's local
	// inserts, in typing order; items typed here slice it. Older chunks
	// stay alive while items still use them, and content is never
	// changed in place.
	arena []rune
	keys  map[string]*mapKey // map: state of every key ever set
	sum   int128             // counter: sum of all adds
}

func (c *container) isRoot() bool { return c.id.isNone() }

// handle returns the public handle of c.
func (c *container) handle() Container {
	switch c.kind {
	case KindText:
		return (*Text)(c)
	case KindList:
		return (*List)(c)
	case KindMap:
		return (*Map)(c)
	default:
		return (*Counter)(c)
	}
}

// describe names c in error messages: a root by name, a nested container
// by the id of the operation that created it.
func (c *container) describe() string {
	if c.isRoot() {
		return fmt.Sprintf("%s %q", c.kind, c.name)
	}
	return fmt.Sprintf("%s %d:%d", c.kind, c.id.replica, c.id.counter)
}

// checkEditable returns ErrTypeMismatch for a root whose name another
// type has won. Nested containers can always be edited, even once they
// are no longer reachable from a root, because a replica that has not
// seen the removal edits them too and both edits must merge.
// The error is built apart so that the check inlines into every edit.
func (c *container) checkEditable() error {
	if c.blocked {
		return c.blockedError()
	}
	return nil
}

func (c *container) blockedError() error {
	w := c.doc.rootWinner(c.name)
	return fmt.Errorf("edit %s: the name belongs to a %s now; use Doc.%s: %w",
		c.describe(), w.kind, capitalized(w.kind), ErrTypeMismatch)
}

// value returns the JSON-like value of c.
func (c *container) value() any {
	switch c.kind {
	case KindText:
		return (*Text)(c).String()
	case KindList:
		return (*List)(c).valueSlice()
	case KindMap:
		return (*Map)(c).valueMap()
	default:
		v, ok := c.sum.int64()
		if !ok {
			return c.sum.big()
		}
		return v
	}
}

// newContainer returns an empty container of kind k.
func (d *Doc) newContainer(k Kind) *container {
	c := &container{doc: d, kind: k, id: noID}
	switch k {
	case KindText, KindList:
		c.tree = newTree()
	case KindMap:
		c.keys = make(map[string]*mapKey)
	}
	return c
}

// newNested creates the container that operation id creates inside
// parent, and registers it so that updates can refer to it.
func (d *Doc) newNested(k Kind, id opID, parent *container) *container {
	c := d.newContainer(k)
	c.id = id
	c.parent = parent
	d.nested[id] = c
	return c
}

// newElement creates the nested container that the list element id holds.
func (d *Doc) newElement(k Kind, id opID, list *container) *container {
	c := d.newNested(k, id, list)
	d.replicaState(id.replica).addElement(c)
	return c
}

// touch records that an operation on c was applied. The first one on a
// root fixes its type for the name, so the names' winners are recomputed.
func (d *Doc) touch(c *container) {
	if !c.touched {
		d.touchFirst(c)
	}
}

// touchFirst is touch for the first operation on c, apart so that touch
// inlines into every edit.
func (d *Doc) touchFirst(c *container) {
	c.touched = true
	if c.isRoot() {
		d.updateBlocked(c.name)
	}
}

// rootWinner returns the root container that State shows for name: of
// the touched roots of that name, the one of the lowest kind. It returns
// nil if no root of that name has been touched.
func (d *Doc) rootWinner(name string) *container {
	for k := KindText; k <= KindCounter; k++ {
		if c := d.roots[rootKey{name, k}]; c != nil && c.touched {
			return c
		}
	}
	return nil
}

// updateBlocked recomputes which roots called name may be edited.
func (d *Doc) updateBlocked(name string) {
	winner := d.rootWinner(name)
	for k := KindText; k <= KindCounter; k++ {
		if c := d.roots[rootKey{name, k}]; c != nil {
			c.blocked = winner != nil && winner != c
		}
	}
}

// rootKey names a root container: containers of different types may share
// a name when replicas created them concurrently.
type rootKey struct {
	name string
	kind Kind
}

// root returns the root container called name of kind k, creating it if
// needed. It fails if a root of another type has already been touched
// under that name.
func (d *Doc) root(name string, k Kind) (*container, error) {
	if w := d.rootWinner(name); w != nil && w.kind != k {
		return nil, fmt.Errorf("%s %q: the name belongs to a %s; use Doc.%s: %w",
			k, name, w.kind, capitalized(w.kind), ErrTypeMismatch)
	}
	return d.ensureRoot(name, k), nil
}

// ensureRoot returns the root container (name, k), creating it if needed.
func (d *Doc) ensureRoot(name string, k Kind) *container {
	key := rootKey{name, k}
	c := d.roots[key]
	if c == nil {
		c = d.newContainer(k)
		c.name = name
		d.roots[key] = c
		c.blocked = d.rootWinner(name) != nil
	}
	return c
}

func capitalized(k Kind) string {
	switch k {
	case KindText:
		return "Text"
	case KindList:
		return "List"
	case KindMap:
		return "Map"
	}
	return "Counter"
}
