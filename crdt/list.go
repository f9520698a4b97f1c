package crdt

import (
	"fmt"
	"unicode/utf8"
)

// List is a list container: a sequence of JSON values and nested
// containers, merged by the same rules as a text, with an element in place
// of a code point. Indexes count elements. Its methods lock the document,
// so a List is as safe for concurrent use as its Doc.
type List container

// List returns the root list called name, creating it if the document has
// none. Like Text, it returns ErrTypeMismatch if the name belongs to a
// root of another type and ErrInvalidUTF8 for a name that is not UTF-8.
func (d *Doc) List(name string) (*List, error) {
	if !utf8.ValidString(name) {
		return nil, fmt.Errorf("list name %q: %w", name, ErrInvalidUTF8)
	}

	c, err := d.root(name, KindList)
	if err != nil {
		return nil, err
	}
	return (*List)(c), nil
}

func (l *List) base() *container { return (*container)(l) }

// Kind returns KindList.
func (l *List) Kind() Kind { return KindList }

// Value returns the elements as a []any, nested containers as their
// values.
func (l *List) Value() any {
	return l.valueSlice()
}

func (l *List) valueSlice() []any {
	out := make([]any, 0, l.tree.root.visible)
	l.tree.each(func(it *item) bool {
		if !it.deleted {
			for _, v := range it.values {
				out = append(out, stateValue(v))
			}
		}
		return true
	})
	return out
}

// Len returns the number of elements.
func (l *List) Len() int {
	return l.tree.root.visible
}

// Get returns element i: a copy of a plain value, or the handle of a
// nested container. It returns an error wrapping ErrOutOfRange if i is
// not an index of the list.
func (l *List) Get(i int) (any, error) {
	if n := l.tree.root.visible; i < 0 || i >= n {
		return nil, fmt.Errorf("get element %d of %s of length %d: %w", i, l.base().describe(), n, ErrOutOfRange)
	}

	it, off, _ := l.tree.findVisible(i)
	return cloneValue(it.values[off]), nil
}

// Insert inserts values before element i; i equal to Len appends. Each
// value must be a JSON value (see Map.Set). It returns an error wrapping
// ErrOutOfRange or ErrInvalidValue, and changes nothing, if i is outside
// [0, Len] or a value is not a JSON value.
func (l *List) Insert(i int, values ...any) error {
	if err := l.checkInsert(i, len(values)); err != nil {
		return err
	}
	norm := make([]any, len(values))
	for j, v := range values {
		n, err := normalizeValue(v, 0)
		if err != nil {
			return fmt.Errorf("insert value %d into %s: %w: %w", j, l.base().describe(), ErrInvalidValue, err)
		}
		norm[j] = n
	}
	if len(norm) == 0 {
		return nil
	}

	l.base().insertLocal(i, "", len(norm), norm)
	l.doc.touch(l.base())
	return nil
}

// InsertNew inserts a new, empty container of kind k before element i
// and returns its handle. Concurrent inserts of containers make separate
// elements, as for any value.
func (l *List) InsertNew(i int, k Kind) (Container, error) {
	if !k.valid() {
		return nil, fmt.Errorf("insert a container of %s into %s: use KindText, KindList, KindMap or KindCounter: %w",
			k, l.base().describe(), ErrInvalidValue)
	}
	if err := l.checkInsert(i, 1); err != nil {
		return nil, err
	}

	d := l.doc
	c := d.newElement(k, opID{replica: d.replica, counter: d.own.next}, l.base())
	l.base().insertLocal(i, "", 1, []any{c})
	d.touch(l.base())
	return c.handle(), nil
}

func (l *List) checkInsert(i, n int) error {
	if length := l.tree.root.visible; i < 0 || i > length {
		return fmt.Errorf("insert at %d into %s of length %d: use an index from 0 to %d: %w",
			i, l.base().describe(), length, length, ErrOutOfRange)
	}
	if err := l.base().checkEditable(); err != nil {
		return err
	}
	return l.doc.checkOwnCounter(n)
}

// Delete deletes count elements starting at i. A nested container among
// them disappears from the list with its content. It returns an error
// wrapping ErrOutOfRange, and changes nothing, if i or count is negative
// or i+count is past the end.
func (l *List) Delete(i, count int) error {
	length := l.tree.root.visible
	if i < 0 || count < 0 || i > length || count > length-i {
		return fmt.Errorf("delete %d elements at %d from %s of length %d: keep index+count within the list: %w",
			count, i, l.base().describe(), length, ErrOutOfRange)
	}
	if count == 0 {
		return nil
	}
	if err := l.base().checkEditable(); err != nil {
		return err
	}
	if err := l.doc.checkOwnCounter(count); err != nil {
		return err
	}

	l.base().deleteLocal(i, count)
	return nil
}
