package crdt

import (
	"fmt"
	"sort"
)

// maxTextLength bounds the code points, tombstones included, that remote
// updates and saved states may give a text, far below where the int counts
// in its tree would overflow.
const maxTextLength = 1 << 48

// pendingRange is a run of counters that an earlier operation of the
// update being validated will add.
type pendingRange struct {
	start, end uint64
	container  int
	insert     bool
}

// validate checks, without changing anything, that every operation of u
// the document lacks refers only to inserted code points of its own
// container that the document or an earlier operation of u holds. u must
// be ready, so that a reference that fails to resolve is a fault of the
// update, not a missing cause.
func (d *Doc) validate(u *update) error {
	pending := make(map[ReplicaID][]pendingRange)
	next := make(map[ReplicaID]uint64)
	nextOf := func(r ReplicaID) uint64 {
		if n, ok := next[r]; ok {
			return n
		}
		return d.applied(r)
	}
	added := make([]uint64, len(u.containers))

	// insertedRange reports whether [a, b) of replica r are all inserted
	// code points of container c.
	insertedRange := func(r ReplicaID, a, b uint64, c int) bool {
		applied := d.applied(r)
		for a < b {
			if a < applied {
				it, _ := d.replicas[r].items.find(a)
				if it == nil || it.text.name != u.containers[c].name {
					return false
				}
				a = min(it.end(), b)
				continue
			}
			ranges := pending[r]
			i := sort.Search(len(ranges), func(i int) bool { return ranges[i].end > a })
			if i == len(ranges) || ranges[i].start > a || !ranges[i].insert || ranges[i].container != c {
				return false
			}
			a = min(ranges[i].end, b)
		}
		return true
	}
	inserted := func(id opID, c int) bool {
		return id.isNone() || insertedRange(id.replica, id.counter, id.counter+1, c)
	}

	for i := range u.ops {
		o := &u.ops[i]
		cur := nextOf(o.id.replica)
		if o.end() <= cur {
			continue
		}
		if o.id.counter > cur {
			return fmt.Errorf("apply update: operation %d of replica %d starts at counter %d but the document has only %d: %w",
				i, o.id.replica, o.id.counter, cur, ErrInvalidUpdate)
		}

		switch o.kind {
		case opInsert, opInsertDeleted:
			left := o.left
			if cur > o.id.counter {
				left = opID{replica: o.id.replica, counter: cur - 1}
			}
			for _, ref := range []opID{left, o.right} {
				if !inserted(ref, o.container) {
					return fmt.Errorf("apply update: operation %d of replica %d at counter %d has origin %d:%d, which is not an inserted code point of text %q: %w",
						i, o.id.replica, o.id.counter, ref.replica, ref.counter, u.containers[o.container].name, ErrInvalidUpdate)
				}
			}
			if !d.originsInOrder(u.containers[o.container].name, left, o.right) {
				return fmt.Errorf("apply update: operation %d of replica %d at counter %d has its right origin %d:%d before its left origin %d:%d: %w",
					i, o.id.replica, o.id.counter, o.right.replica, o.right.counter, left.replica, left.counter, ErrInvalidUpdate)
			}
			added[o.container] += o.end() - cur
		case opDelete:
			for _, t := range o.targets {
				lo, hi := t.target.counter, t.target.counter+t.length
				if t.backward {
					lo, hi = t.target.counter+1-t.length, t.target.counter+1
				}
				if !insertedRange(t.target.replica, lo, hi, o.container) {
					return fmt.Errorf("apply update: operation %d of replica %d deletes %d:%d to %d:%d, which are not all inserted code points of text %q: %w",
						i, o.id.replica, t.target.replica, lo, t.target.replica, hi-1, u.containers[o.container].name, ErrInvalidUpdate)
				}
			}
		}
		pending[o.id.replica] = append(pending[o.id.replica],
			pendingRange{start: cur, end: o.end(), container: o.container, insert: o.kind != opDelete})
		next[o.id.replica] = o.end()
	}

	for c, n := range added {
		var total uint64
		if t := d.texts[u.containers[c].name]; t != nil {
			total = uint64(t.tree.root.total)
		}
		if n > maxTextLength || total+n > maxTextLength {
			return fmt.Errorf("apply update: text %q would exceed %d code points: %w", u.containers[c].name, uint64(maxTextLength), ErrInvalidUpdate)
		}
	}
	return nil
}

// originsInOrder reports whether left comes before right in the text
// called name, as it does for every insert that a replica made. Origins the
// document does not have yet, because an earlier operation of the same
// update inserts them, pass unchecked.
func (d *Doc) originsInOrder(name string, left, right opID) bool {
	t := d.texts[name]
	if t == nil || left.isNone() || right.isNone() ||
		left.counter >= d.applied(left.replica) || right.counter >= d.applied(right.replica) {
		return true
	}
	return d.leftIndex(t, left) < d.rightIndex(t, right)
}

// applyValidated applies the operations of u that the document lacks.
func (d *Doc) applyValidated(u *update) {
	for i := range u.ops {
		o := &u.ops[i]
		rs := d.replicaState(o.id.replica)
		if o.end() <= rs.next {
			continue
		}
		skip := rs.next - o.id.counter
		t := d.text(u.containers[o.container].name)

		switch o.kind {
		case opInsert, opInsertDeleted:
			it := &item{
				id:      o.id.plus(int(skip)),
				length:  int(o.length - skip),
				left:    o.left,
				right:   o.right,
				deleted: o.kind == opInsertDeleted,
				text:    t,
			}
			if skip > 0 {
				it.left = o.id.plus(int(skip) - 1)
			}
			if o.kind == opInsert {
				it.content = o.content[skip:]
			}
			d.integrate(t, rs, it)
		case opDelete:
			d.applyDelete(rs, o, skip)
		}

		s := span{replica: o.id.replica, start: rs.next, end: o.end()}
		rs.next = s.end
		d.history = appendSpan(d.history, s)
	}
}

// integrate places a remote run in the text by the list form of FugueMax,
// which diamond-types calls YjsMod. It scans the items between the run's
// left and right origins and compares each item o with the run through
// their origins:
//
//   - o's left origin lies before the run's: o was typed outside this gap,
//     so the run goes before o and the scan stops.
//   - same left origin, o's right origin further right: o was typed into a
//     wider gap, so the run goes after o.
//   - same left origin, o's right origin further left: o sits inside the
//     run's gap. The run goes before o unless a later item with the same
//     left origin makes it go after both, so the scan goes on without
//     moving the destination.
//   - same left and right origin: concurrent siblings, and the lower
//     replica id goes first.
//   - o's left origin lies after the run's: o hangs off an item already
//     passed and goes wherever that item went.
//
// Because right origins take part, runs typed backwards do not interleave
// and text typed next to text its writer had seen stays next to it.
func (d *Doc) integrate(t *Text, rs *replicaState, it *item) {
	var leftItem, rightItem *item
	if !it.left.isNone() {
		var off int
		leftItem, off = d.replicas[it.left.replica].items.find(it.left.counter)
		if off < leftItem.length-1 {
			d.splitItem(leftItem, off+1)
		}
	}
	if !it.right.isNone() {
		var off int
		rightItem, off = d.replicas[it.right.replica].items.find(it.right.counter)
		if off > 0 {
			rightItem = d.splitItem(rightItem, off)
		}
	}

	var o *item
	if leftItem == nil {
		o = t.tree.firstItem()
	} else {
		o = nextItem(leftItem)
	}
	dest := o
	if o != rightItem {
		leftIndex := -1
		if leftItem != nil {
			leftIndex = t.tree.indexOf(leftItem) + leftItem.length - 1
		}
		rightIndex := d.rightIndex(t, it.right)
		scanning := false
		for {
			if !scanning {
				dest = o
			}
			if o == nil || o == rightItem {
				break
			}
			oLeft := d.leftIndex(t, o.left)
			if oLeft < leftIndex {
				break
			}
			if oLeft == leftIndex {
				oRight := d.rightIndex(t, o.right)
				if oRight < rightIndex {
					scanning = true
				} else if oRight == rightIndex && compareIDs(it.id, o.id) < 0 {
					break
				} else {
					scanning = false
				}
			}
			o = nextItem(o)
		}
	}

	var prev *item
	if dest == nil {
		prev = t.tree.lastItem()
	} else {
		prev = prevItem(dest)
	}
	if prev != nil && prev.id.replica == it.id.replica && prev.end() == it.id.counter &&
		it.left == prev.lastID() && it.right == prev.right && prev.deleted == it.deleted {
		// The run continues prev exactly, as when a remote replica's
		// keystrokes arrive one update each.
		if !it.deleted {
			prev.content = append(prev.content, it.content...)
		}
		prev.length += it.length
		addCounts(prev.leaf, it.visibleLength(), it.length)
		return
	}
	t.tree.insertBefore(dest, it)
	rs.items.add(it)
}

// leftIndex returns the document index of a left origin, -1 for none.
func (d *Doc) leftIndex(t *Text, id opID) int {
	if id.isNone() {
		return -1
	}
	it, off := d.replicas[id.replica].items.find(id.counter)
	return t.tree.indexOf(it) + off
}

// rightIndex returns the document index of a right origin, the text's
// total length for none.
func (d *Doc) rightIndex(t *Text, id opID) int {
	if id.isNone() {
		return t.tree.root.total
	}
	it, off := d.replicas[id.replica].items.find(id.counter)
	return t.tree.indexOf(it) + off
}

// applyDelete applies the delete operation o of replica rs, skipping its
// first skip operations, which the document already has.
func (d *Doc) applyDelete(rs *replicaState, o *op, skip uint64) {
	for _, t := range o.targets {
		if skip >= t.length {
			skip -= t.length
			continue
		}
		run := deleteRun{counter: t.counter + skip, length: t.length - skip, target: t.targetAt(t.counter + skip), backward: t.backward}
		skip = 0
		rs.deletes = appendDeleteRun(rs.deletes, run)

		lo, hi := run.target.counter, run.target.counter+run.length
		if run.backward {
			lo, hi = run.target.counter+1-run.length, run.target.counter+1
		}
		d.deleteRange(run.target.replica, lo, hi)
	}
}

// deleteRange turns the code points [lo, hi) of replica r into tombstones.
// Code points already deleted, by a concurrent delete, stay as they are.
func (d *Doc) deleteRange(r ReplicaID, lo, hi uint64) {
	rs := d.replicas[r]
	for c := lo; c < hi; {
		it, off := rs.items.find(c)
		k := min(uint64(it.length-off), hi-c)
		if !it.deleted {
			d.deletePart(it, off, int(k))
		}
		c += k
	}
}
