package crdt

import "slices"

// item is a run of elements of a text or list (code points or list
// elements) that one replica inserted with consecutive counters. Every
// element after the first has the previous one as its left origin, and all
// share one right origin. Such a run behaves exactly like the same
// elements inserted one by one, so it can be split at any offset and
// rejoined when the halves meet again.
type item struct {
	id      opID   // id of the first element
	length  int    // elements in the run
	left    opID   // left origin of the first element, or noID
	right   opID   // right origin of every element, or noID
	content []rune // text: the code points; nil once deleted
	// values holds a list's elements: plain values, and *container for
	// nested containers; nil once deleted. The nested containers of a
	// deleted run stay in the document, because late updates may still
	// edit them (see replicaState.elements).
	values  []any
	deleted bool       // tombstone: kept for ordering, invisible in the value
	scratch uint32     // zero except while Load checks the item order
	leaf    *node      // leaf of the container's tree that contains the item
	owner   *container // text or list that the item belongs to
}

func (it *item) end() uint64 { return it.id.counter + uint64(it.length) }

// lastID returns the id of the item's last element.
func (it *item) lastID() opID { return it.id.plus(it.length - 1) }

func (it *item) visibleLength() int {
	if it.deleted {
		return 0
	}
	return it.length
}

// Capacity of tree nodes. Leaves are scanned linearly, so they stay small
// enough for that to be cheap and large enough to keep the tree shallow.
const (
	maxLeafItems = 32
	maxChildren  = 32
)

// node is a node of a B-tree over a text's or list's items in document
// order. Every node stores how many elements lie below it, counting
// tombstones (total) and not counting them (visible), so that a visible
// position and the document index of an item are both found in
// logarithmic time.
type node struct {
	parent   *node
	children []*node // inner nodes only
	items    []*item // leaves only
	isLeaf   bool
	visible  int
	total    int
	prev     *node // neighbouring leaves, for walking items in order
	next     *node
}

// tree holds the items of a text or list, tombstones included, in
// document order.
type tree struct {
	root  *node
	first *node // leftmost leaf

	// cached is the leaf where the last findVisible ended and cachedStart
	// the visible position of its first element. Edits are local, so the
	// next search usually ends in the same leaf and skips the descent.
	// A count change in another leaf, or a split, clears it; changes
	// inside it leave cachedStart true.
	cached      *node
	cachedStart int

	// hint is the live item that the last findVisible returned, hintStart
	// the visible position of its first element and hintIndex its index
	// in its leaf. Typing returns to the item it just extended, so the
	// next search usually ends there and skips the scan of the leaf. Any
	// change of counts or of a leaf's items clears it, except growth of
	// the hint itself, which moves only what follows it.
	hint      *item
	hintStart int
	hintIndex int
}

func newTree() tree {
	leaf := &node{isLeaf: true}
	return tree{root: leaf, first: leaf}
}

// findVisible returns the live item that contains the visible element
// at pos, the offset of that element in the item, and the item's index in
// its leaf. pos must be less than the visible length of the container.
func (t *tree) findVisible(pos int) (*item, int, int) {
	if h := t.hint; h != nil && pos >= t.hintStart && pos < t.hintStart+h.length {
		return h, pos - t.hintStart, t.hintIndex
	}
	n, start := t.cached, t.cachedStart
	if n == nil || pos < start || pos >= start+n.visible {
		n, start = t.root, 0
		for !n.isLeaf {
			next := n.children[len(n.children)-1]
			for _, c := range n.children {
				if pos-start < c.visible {
					next = c
					break
				}
				start += c.visible
			}
			n = next
		}
		t.cached, t.cachedStart = n, start
	}

	at := pos
	pos -= start
	last, lastIndex := (*item)(nil), -1
	for i, it := range n.items {
		if it.deleted {
			continue
		}
		if pos < it.length {
			t.hint, t.hintStart, t.hintIndex = it, at-pos, i
			return it, pos, i
		}
		pos -= it.length
		last, lastIndex = it, i
	}
	// Only reachable if the counts were inconsistent; the last live item
	// keeps callers from dereferencing nil.
	return last, last.length - 1, lastIndex
}

func (t *tree) firstItem() *item {
	for n := t.first; n != nil; n = n.next {
		if len(n.items) > 0 {
			return n.items[0]
		}
	}
	return nil
}

func (t *tree) lastItem() *item {
	n := t.root
	for !n.isLeaf {
		n = n.children[len(n.children)-1]
	}
	for ; n != nil; n = n.prev {
		if len(n.items) > 0 {
			return n.items[len(n.items)-1]
		}
	}
	return nil
}

// nextItem returns the item after it in document order, or nil.
func nextItem(it *item) *item {
	return nextAt(it.leaf, indexInLeaf(it))
}

// nextAt returns the item after index i of leaf n in document order, or
// nil.
func nextAt(n *node, i int) *item {
	if i+1 < len(n.items) {
		return n.items[i+1]
	}
	for n = n.next; n != nil; n = n.next {
		if len(n.items) > 0 {
			return n.items[0]
		}
	}
	return nil
}

// prevItem returns the item before it in document order, or nil.
func prevItem(it *item) *item {
	n := it.leaf
	i := indexInLeaf(it)
	if i > 0 {
		return n.items[i-1]
	}
	for n = n.prev; n != nil; n = n.prev {
		if len(n.items) > 0 {
			return n.items[len(n.items)-1]
		}
	}
	return nil
}

func indexInLeaf(it *item) int {
	return slices.Index(it.leaf.items, it)
}

// indexOf returns the document index of the first element of it,
// counting tombstones.
func (t *tree) indexOf(it *item) int {
	n := it.leaf
	index := 0
	for _, o := range n.items {
		if o == it {
			break
		}
		index += o.length
	}
	for n.parent != nil {
		p := n.parent
		for _, c := range p.children {
			if c == n {
				break
			}
			index += c.total
		}
		n = p
	}
	return index
}

// setHint makes the live item it, whose first element is at visible
// position start, the next hint of findVisible.
func (t *tree) setHint(it *item, start int) {
	t.hint, t.hintStart, t.hintIndex = it, start, indexInLeaf(it)
}

// addCounts adds to the counts of leaf and all its ancestors.
func (t *tree) addCounts(leaf *node, visible, total int) {
	t.hint = nil
	t.countsChanged(leaf, visible, total)
}

// grew counts n elements that were just appended to the live item it.
func (t *tree) grew(it *item, n int) {
	if it != t.hint {
		t.hint = nil
	}
	t.countsChanged(it.leaf, n, n)
}

func (t *tree) countsChanged(leaf *node, visible, total int) {
	if leaf != t.cached {
		t.cached = nil
	}
	for n := leaf; n != nil; n = n.parent {
		n.visible += visible
		n.total += total
	}
}

// insertAt puts it at index i of leaf and counts its elements.
func (t *tree) insertAt(leaf *node, i int, it *item) {
	leaf.items = slices.Insert(leaf.items, i, it)
	it.leaf = leaf
	t.addCounts(leaf, it.visibleLength(), it.length)
	if len(leaf.items) > maxLeafItems {
		t.splitNode(leaf)
	}
}

// insertAfter puts it right after prev, or first in the container if prev is nil.
func (t *tree) insertAfter(prev, it *item) {
	if prev == nil {
		t.insertAt(t.first, 0, it)
		return
	}
	t.insertAt(prev.leaf, indexInLeaf(prev)+1, it)
}

// insertBefore puts it right before next, or last in the container if next is nil.
func (t *tree) insertBefore(next, it *item) {
	if next == nil {
		n := t.root
		for !n.isLeaf {
			n = n.children[len(n.children)-1]
		}
		t.insertAt(n, len(n.items), it)
		return
	}
	t.insertAt(next.leaf, indexInLeaf(next), it)
}

// placeAfter puts it right after prev in prev's leaf without counting its
// elements, because they were already counted as part of prev (a split).
func (t *tree) placeAfter(prev, it *item) {
	t.hint = nil
	leaf := prev.leaf
	leaf.items = slices.Insert(leaf.items, indexInLeaf(prev)+1, it)
	it.leaf = leaf
	if len(leaf.items) > maxLeafItems {
		t.splitNode(leaf)
	}
}

// removeMerged takes it out of its leaf without changing any count,
// because its elements were moved into its neighbour (a merge). A leaf
// never becomes empty this way, since the neighbour stays in it.
func (t *tree) removeMerged(it *item) {
	t.hint = nil
	i := indexInLeaf(it)
	it.leaf.items = slices.Delete(it.leaf.items, i, i+1)
	it.leaf = nil
}

// splitNode moves the upper half of an overfull node into a new sibling
// and splits the parent in turn when that overflows.
func (t *tree) splitNode(n *node) {
	t.cached, t.hint = nil, nil
	sibling := &node{isLeaf: n.isLeaf, parent: n.parent}
	if n.isLeaf {
		half := len(n.items) / 2
		sibling.items = slices.Clone(n.items[half:])
		clear(n.items[half:])
		n.items = n.items[:half]
		for _, it := range sibling.items {
			it.leaf = sibling
			sibling.visible += it.visibleLength()
			sibling.total += it.length
		}
		sibling.prev, sibling.next = n, n.next
		if n.next != nil {
			n.next.prev = sibling
		}
		n.next = sibling
	} else {
		half := len(n.children) / 2
		sibling.children = slices.Clone(n.children[half:])
		clear(n.children[half:])
		n.children = n.children[:half]
		for _, c := range sibling.children {
			c.parent = sibling
			sibling.visible += c.visible
			sibling.total += c.total
		}
	}
	n.visible -= sibling.visible
	n.total -= sibling.total

	parent := n.parent
	if parent == nil {
		root := &node{
			children: []*node{n, sibling},
			visible:  n.visible + sibling.visible,
			total:    n.total + sibling.total,
		}
		n.parent, sibling.parent = root, root
		t.root = root
		return
	}
	i := slices.Index(parent.children, n)
	parent.children = slices.Insert(parent.children, i+1, sibling)
	if len(parent.children) > maxChildren {
		t.splitNode(parent)
	}
}

// buildTree builds a tree over items already in document order, filling
// nodes to three quarters so that later inserts rarely split at once.
func buildTree(items []*item) tree {
	if len(items) == 0 {
		return newTree()
	}
	const leafFill = maxLeafItems * 3 / 4
	const innerFill = maxChildren * 3 / 4

	var level []*node
	var prev *node
	for start := 0; start < len(items); start += leafFill {
		end := min(start+leafFill, len(items))
		leaf := &node{isLeaf: true, items: slices.Clone(items[start:end]), prev: prev}
		for _, it := range leaf.items {
			it.leaf = leaf
			leaf.visible += it.visibleLength()
			leaf.total += it.length
		}
		if prev != nil {
			prev.next = leaf
		}
		prev = leaf
		level = append(level, leaf)
	}
	first := level[0]
	for len(level) > 1 {
		var up []*node
		for start := 0; start < len(level); start += innerFill {
			end := min(start+innerFill, len(level))
			parent := &node{children: slices.Clone(level[start:end])}
			for _, c := range parent.children {
				c.parent = parent
				parent.visible += c.visible
				parent.total += c.total
			}
			up = append(up, parent)
		}
		level = up
	}
	return tree{root: level[0], first: first}
}

// each calls f for every item in document order until f returns false.
func (t *tree) each(f func(*item) bool) {
	for n := t.first; n != nil; n = n.next {
		for _, it := range n.items {
			if !f(it) {
				return
			}
		}
	}
}
