package crdt

import "unicode/utf8"

// This file holds the sequence algorithm that texts and lists share:
// local inserts and deletes on the items of a container's tree. A text's
// items carry code points in content, a list's items carry elements in
// values; everything else is the same.

// insertLocal inserts n elements at a visible position of c that has been
// checked: the n code points of text for a text, values for a list. Local
// inserts need no conflict resolution: the new run goes right after its
// left origin, which is right before its right origin here.
func (c *container) insertLocal(pos int, text string, n int, values []any) {
	d := c.doc
	own := d.own
	start := own.next

	var leftItem, next *item
	left := noID
	leftIndex := -1
	if pos > 0 {
		it, off, i := c.tree.findVisible(pos - 1)
		left = it.id.plus(off)
		leftItem = it
		if off < it.length-1 {
			next = d.splitItem(it, off+1)
		} else {
			leftIndex = i
			next = nextAt(it.leaf, i)
			// Typing at the end of this replica's latest run extends
			// that run instead of adding an item.
			if it.id.replica == own.id && it.end() == start && !it.deleted && it.right == idOf(next) {
				if c.kind == KindText {
					if grown, ok := c.extendByte(it.content, text); ok {
						it.content = grown
					} else {
						it.content = c.extendContent(it.content, text, n)
					}
				}
				it.values = append(it.values, values...)
				it.length += n
				c.tree.grew(it, n)
				d.advanceLocal(start, uint64(n))
				return
			}
		}
	} else {
		next = c.tree.firstItem()
	}

	it := d.newItem(item{
		id:     opID{replica: own.id, counter: start},
		length: n,
		left:   left,
		right:  idOf(next),
		values: values,
		owner:  c,
	})
	if c.kind == KindText {
		it.content = c.extendContent(nil, text, n)
	}
	if leftIndex >= 0 {
		c.tree.insertAt(leftItem.leaf, leftIndex+1, it)
	} else {
		c.tree.insertAfter(leftItem, it)
	}
	// The next keystroke most likely continues the new run.
	c.tree.setHint(it, pos)
	own.items.add(it)
	d.advanceLocal(start, uint64(n))
}

// countRunes returns the number of code points in s and whether s is
// valid UTF-8, in one pass.
func countRunes(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); n++ {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return 0, false
		}
		i += size
	}
	return n, true
}

// extendContent returns the code points of run followed by the m code
// points of s, stored in the text's arena of typed content. Typing extends
// a run that ends the arena in place, so a keystroke allocates nothing. A
// run elsewhere is copied to the end first.
func (c *container) extendContent(run []rune, s string, m int) []rune {
	c.arena = reserve(c.arena, run, m)
	for _, r := range s {
		c.arena = append(c.arena, r)
	}
	return tail(c.arena, len(run)+m)
}

// extendByte is extendContent for the most common keystroke, one ASCII
// character typed at the end of a run that ends the arena, which has room.
// It reports false, having changed nothing, for anything else. It is
// small enough to inline, which saves a call per keystroke.
func (c *container) extendByte(run []rune, s string) ([]rune, bool) {
	n := len(c.arena)
	if len(s) != 1 || s[0] >= utf8.RuneSelf || len(run) == 0 || n == 0 || n == cap(c.arena) || &run[len(run)-1] != &c.arena[n-1] {
		return nil, false
	}
	c.arena = append(c.arena, rune(s[0]))
	return c.arena[n-len(run) : n+1 : n+1], true
}

// deleteLocal deletes count visible elements of c from pos, both checked.
func (c *container) deleteLocal(pos, count int) {
	d := c.doc
	own := d.own
	start := own.next
	counter := start

	it, off, i := c.tree.findVisible(pos)
	before, beforeLength := it, off
	for remaining := count; ; {
		k := min(it.length-off, remaining)
		own.deletes = appendDeleteRun(own.deletes, deleteRun{counter: counter, length: uint64(k), target: it.id.plus(off)})
		counter += uint64(k)
		remaining -= k
		dead := d.deletePart(it, i, off, k)
		if remaining == 0 {
			break
		}
		for it = nextItem(dead); it.deleted; it = nextItem(it) {
		}
		off, i = 0, -1
	}
	// Text is mostly retyped where it was deleted, which starts with a
	// search for the element before pos. When that element is in the
	// first item, the item keeps its first beforeLength elements live.
	if beforeLength > 0 {
		c.tree.setHint(before, pos-beforeLength)
	}
	d.advanceLocal(start, uint64(count))
}

// advanceLocal records n local operations starting at counter start.
func (d *Doc) advanceLocal(start, n uint64) {
	d.own.next = start + n
	// Mostly both lists end with the previous local operations and grow
	// in place, without the calls that appending takes.
	if extendsLast(d.history, d.replica, start) && extendsLast(d.uncommitted, d.replica, start) {
		d.history[len(d.history)-1].end += n
		d.uncommitted[len(d.uncommitted)-1].end += n
		return
	}
	s := span{replica: d.replica, start: start, end: start + n}
	d.history = appendSpan(d.history, s)
	d.uncommitted = appendSpan(d.uncommitted, s)
}

// extendsLast reports whether spans end with a span of replica that ends
// at start.
func extendsLast(spans []span, replica ReplicaID, start uint64) bool {
	n := len(spans)
	return n > 0 && spans[n-1].replica == replica && spans[n-1].end == start
}

// idOf returns the id of the first element of it, or noID for nil.
func idOf(it *item) opID {
	if it == nil {
		return noID
	}
	return it.id
}

// splitItem cuts it after k elements (0 < k < length) and returns the new
// item holding the rest. The container's content does not change.
func (d *Doc) splitItem(it *item, k int) *item {
	rest := d.newItem(item{
		id:      it.id.plus(k),
		length:  it.length - k,
		left:    it.id.plus(k - 1),
		right:   it.right,
		deleted: it.deleted,
		owner:   it.owner,
	})
	// The caps keep a later append to it from overwriting rest.
	if it.content != nil {
		rest.content = it.content[k:]
		it.content = it.content[:k:k]
	}
	if it.values != nil {
		rest.values = it.values[k:]
		it.values = it.values[:k:k]
	}
	it.length = k
	it.owner.tree.placeAfter(it, rest)
	d.replicas[it.id.replica].items.add(rest)
	return rest
}

// deletePart turns the elements [off, off+k) of the live item it into a
// tombstone and returns the item that holds them afterwards. i is the
// index of it in its leaf, or -1 if the caller does not know it. When the
// tombstone continues a neighbouring tombstone of the same run, as with
// backspace or forward delete, the boundary between the two items moves
// and no item is added.
func (d *Doc) deletePart(it *item, i, off, k int) *item {
	leaf := it.leaf
	if i < 0 {
		i = indexInLeaf(it)
	}
	switch {
	case off > 0 && off+k == it.length && i+1 < len(leaf.items) && leaf.items[i+1].deleted && continuesRun(it, leaf.items[i+1]):
		next := leaf.items[i+1]
		keep := it.length - k
		it.values = part(it.values, 0, keep)
		if it.content != nil {
			it.content = it.content[:keep:keep]
		}
		it.length = keep
		next.id = it.id.plus(keep)
		next.left = it.lastID()
		next.length += k
		it.owner.tree.addCounts(leaf, -k, 0)
		return next
	case off == 0 && k < it.length && i > 0 && leaf.items[i-1].deleted && continuesRun(leaf.items[i-1], it):
		prev := leaf.items[i-1]
		prev.length += k
		it.id = it.id.plus(k)
		it.left = prev.lastID()
		if it.content != nil {
			it.content = it.content[k:]
		}
		it.values = part(it.values, k, it.length)
		it.length -= k
		it.owner.tree.addCounts(leaf, -k, 0)
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

// continuesRun reports whether b's first element follows a's last in one
// run, so that the two items could be one.
func continuesRun(a, b *item) bool {
	return a.id.replica == b.id.replica && a.end() == b.id.counter &&
		b.left == a.lastID() && b.right == a.right && a.owner == b.owner
}

// markDeleted turns the live item it into a tombstone, drops its content
// and merges it with neighbouring tombstones of the same run. It returns
// the item that now holds its elements.
func (d *Doc) markDeleted(it *item) *item {
	it.deleted = true
	it.content = nil
	it.values = nil
	it.owner.tree.addCounts(it.leaf, -it.length, 0)

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
	b.owner.tree.removeMerged(b)
	d.replicas[b.id.replica].items.remove(b)
	return true
}

// part returns values[from:to] with no spare capacity, or nil for nil.
func part(values []any, from, to int) []any {
	if values == nil {
		return nil
	}
	return values[from:to:to]
}
