package crdt

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Text is a root text container of a Doc. Positions and counts are
// Unicode code points. Its methods lock the document, so a Text is as safe
// for concurrent use as its Doc.
type Text struct {
	doc  *Doc
	name string
	tree tree // items in document order, tombstones included
}

// Name returns the name of the container in its document.
func (t *Text) Name() string {
	return t.name
}

// Len returns the number of code points in the text.
func (t *Text) Len() int {
	t.doc.mu.Lock()
	defer t.doc.mu.Unlock()
	return t.tree.root.visible
}

// String returns the text.
func (t *Text) String() string {
	t.doc.mu.Lock()
	defer t.doc.mu.Unlock()
	return t.stringLocked()
}

func (t *Text) stringLocked() string {
	var b strings.Builder
	b.Grow(t.tree.root.visible)
	t.tree.each(func(it *item) bool {
		for _, r := range it.content {
			b.WriteRune(r)
		}
		return true
	})
	return b.String()
}

// Insert inserts s before the code point at pos; pos equal to Len appends.
// It returns an error wrapping ErrOutOfRange if pos is outside [0, Len],
// or ErrInvalidUTF8 if s is not valid UTF-8, and then changes nothing.
func (t *Text) Insert(pos int, s string) error {
	t.doc.mu.Lock()
	defer t.doc.mu.Unlock()
	return t.insertLocked(pos, s)
}

func (t *Text) insertLocked(pos int, s string) error {
	d := t.doc
	length := t.tree.root.visible
	if pos < 0 || pos > length {
		return fmt.Errorf("insert at %d into text %q of length %d: use a position from 0 to %d: %w",
			pos, t.name, length, length, ErrOutOfRange)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("insert into text %q: %w", t.name, ErrInvalidUTF8)
	}
	if s == "" {
		return nil
	}
	runes := []rune(s)
	if d.own.next+uint64(len(runes)) > maxCounter {
		return fmt.Errorf("insert into text %q as replica %d: %w", t.name, d.replica, ErrCounterOverflow)
	}

	t.insertLocal(pos, runes)
	return nil
}

// Delete deletes count code points starting at pos. It returns an error
// wrapping ErrOutOfRange if pos or count is negative or pos+count is past
// the end, and then changes nothing.
func (t *Text) Delete(pos, count int) error {
	t.doc.mu.Lock()
	defer t.doc.mu.Unlock()
	return t.deleteLocked(pos, count)
}

func (t *Text) deleteLocked(pos, count int) error {
	d := t.doc
	length := t.tree.root.visible
	if pos < 0 || count < 0 || pos > length || count > length-pos {
		return fmt.Errorf("delete %d code points at %d from text %q of length %d: keep pos+count within the text: %w",
			count, pos, t.name, length, ErrOutOfRange)
	}
	if count == 0 {
		return nil
	}
	if d.own.next+uint64(count) > maxCounter {
		return fmt.Errorf("delete from text %q as replica %d: %w", t.name, d.replica, ErrCounterOverflow)
	}

	t.deleteLocal(pos, count)
	return nil
}

// Replace changes the text to newValue with at most one delete and one
// insert: it keeps the longest common prefix and suffix, in code points,
// and replaces what lies between. It suits callers that only have the old
// and new strings, such as a plain text field.
func (t *Text) Replace(newValue string) error {
	if !utf8.ValidString(newValue) {
		return fmt.Errorf("replace text %q: %w", t.name, ErrInvalidUTF8)
	}

	t.doc.mu.Lock()
	defer t.doc.mu.Unlock()
	old := []rune(t.stringLocked())
	repl := []rune(newValue)

	prefix := 0
	for prefix < len(old) && prefix < len(repl) && old[prefix] == repl[prefix] {
		prefix++
	}
	suffix := 0
	for suffix < len(old)-prefix && suffix < len(repl)-prefix &&
		old[len(old)-1-suffix] == repl[len(repl)-1-suffix] {
		suffix++
	}

	if n := len(old) - prefix - suffix; n > 0 {
		if err := t.deleteLocked(prefix, n); err != nil {
			return err
		}
	}
	if inserted := repl[prefix : len(repl)-suffix]; len(inserted) > 0 {
		return t.insertLocked(prefix, string(inserted))
	}
	return nil
}

// insertLocal inserts runes at a visible position that has been checked.
// Local inserts need no conflict resolution: the new run goes right after
// its left origin, which is right before its right origin here.
func (t *Text) insertLocal(pos int, runes []rune) {
	d := t.doc
	own := d.own
	start := own.next
	n := len(runes)

	var leftItem, next *item
	left := noID
	if pos > 0 {
		it, off := t.tree.findVisible(pos - 1)
		left = it.id.plus(off)
		leftItem = it
		if off < it.length-1 {
			next = d.splitItem(it, off+1)
		} else {
			next = nextItem(it)
			// Typing at the end of this replica's latest run extends
			// that run instead of adding an item.
			if it.id.replica == own.id && it.end() == start && !it.deleted && it.right == idOf(next) {
				it.content = append(it.content, runes...)
				it.length += n
				addCounts(it.leaf, n, n)
				d.advanceLocal(start, uint64(n))
				return
			}
		}
	} else {
		next = t.tree.firstItem()
	}

	it := &item{
		id:      opID{replica: own.id, counter: start},
		length:  n,
		left:    left,
		right:   idOf(next),
		content: runes,
		text:    t,
	}
	t.tree.insertAfter(leftItem, it)
	own.items.add(it)
	d.advanceLocal(start, uint64(n))
}

// deleteLocal deletes count visible code points from pos, both checked.
func (t *Text) deleteLocal(pos, count int) {
	d := t.doc
	own := d.own
	start := own.next
	counter := start

	it, off := t.tree.findVisible(pos)
	for remaining := count; ; {
		k := min(it.length-off, remaining)
		own.deletes = appendDeleteRun(own.deletes, deleteRun{counter: counter, length: uint64(k), target: it.id.plus(off)})
		counter += uint64(k)
		remaining -= k
		dead := d.deletePart(it, off, k)
		if remaining == 0 {
			break
		}
		for it = nextItem(dead); it.deleted; it = nextItem(it) {
		}
		off = 0
	}
	d.advanceLocal(start, uint64(count))
}

// advanceLocal records n local operations starting at counter start.
func (d *Doc) advanceLocal(start, n uint64) {
	s := span{replica: d.replica, start: start, end: start + n}
	d.own.next = s.end
	d.history = appendSpan(d.history, s)
	d.uncommitted = appendSpan(d.uncommitted, s)
}

// idOf returns the id of the first code point of it, or noID for nil.
func idOf(it *item) opID {
	if it == nil {
		return noID
	}
	return it.id
}

// splitItem cuts it after k code points (0 < k < length) and returns the
// new item holding the rest. Document content does not change.
func (d *Doc) splitItem(it *item, k int) *item {
	rest := &item{
		id:      it.id.plus(k),
		length:  it.length - k,
		left:    it.id.plus(k - 1),
		right:   it.right,
		deleted: it.deleted,
		text:    it.text,
	}
	if it.content != nil {
		rest.content = it.content[k:]
		// The cap keeps a later append to it from overwriting rest.
		it.content = it.content[:k:k]
	}
	it.length = k
	it.text.tree.placeAfter(it, rest)
	d.replicas[it.id.replica].items.add(rest)
	return rest
}

// deletePart turns the code points [off, off+k) of the live item it into
// a tombstone and returns the item that holds them afterwards. When the
// tombstone continues a neighbouring tombstone of the same run, as with
// backspace or forward delete, the boundary between the two items moves
// and no item is added.
func (d *Doc) deletePart(it *item, off, k int) *item {
	leaf := it.leaf
	i := indexInLeaf(it)
	switch {
	case off > 0 && off+k == it.length && i+1 < len(leaf.items) && leaf.items[i+1].deleted && continuesRun(it, leaf.items[i+1]):
		next := leaf.items[i+1]
		it.length -= k
		it.content = it.content[:it.length:it.length]
		next.id = it.id.plus(it.length)
		next.left = it.lastID()
		next.length += k
		addCounts(leaf, -k, 0)
		return next
	case off == 0 && k < it.length && i > 0 && leaf.items[i-1].deleted && continuesRun(leaf.items[i-1], it):
		prev := leaf.items[i-1]
		prev.length += k
		it.id = it.id.plus(k)
		it.left = prev.lastID()
		it.content = it.content[k:]
		it.length -= k
		addCounts(leaf, -k, 0)
		return prev
	}

	if off > 0 {
		it = d.splitItem(it, off)
	}
	if it.length > k {
		d.splitItem(it, k)
	}
	return d.markDeleted(it)
}

// continuesRun reports whether b's first code point follows a's last in
// one run, so that the two items could be one.
func continuesRun(a, b *item) bool {
	return a.id.replica == b.id.replica && a.end() == b.id.counter &&
		b.left == a.lastID() && b.right == a.right && a.text == b.text
}

// markDeleted turns the live item it into a tombstone, drops its content
// and merges it with neighbouring tombstones of the same run. It returns
// the item that now holds its code points.
func (d *Doc) markDeleted(it *item) *item {
	it.deleted = true
	it.content = nil
	addCounts(it.leaf, -it.length, 0)

	leaf := it.leaf
	i := indexInLeaf(it)
	if i+1 < len(leaf.items) {
		d.mergeTombstones(it, leaf.items[i+1])
	}
	if i > 0 && d.mergeTombstones(leaf.items[i-1], it) {
		return leaf.items[i-1]
	}
	return it
}

// mergeTombstones moves b into a when both are tombstones of one run.
func (d *Doc) mergeTombstones(a, b *item) bool {
	if !a.deleted || !b.deleted || !continuesRun(a, b) {
		return false
	}
	a.length += b.length
	removeMerged(b)
	d.replicas[b.id.replica].items.remove(b)
	return true
}
