package crdt

import (
	"fmt"
	"sort"
)

// maxTextLength bounds the elements, tombstones included, that remote
// updates and saved states may give a text or list, far below where the
// int counts in its tree would overflow.
const maxTextLength = 1 << 48

// vref names a container while an update is validated: c for one the
// document has, p for one that the update creates.
type vref struct {
	c *container
	p *pendingContainer
}

// pendingContainer is a container that an update being validated creates.
type pendingContainer struct {
	kind Kind
}

func (v vref) kind() Kind {
	if v.c != nil {
		return v.c.kind
	}
	return v.p.kind
}

// pendingRange is a run of counters that an earlier operation of the
// update being validated adds.
type pendingRange struct {
	start, end uint64
	op         int // index into update.ops
	ref        vref
}

// aliasKey identifies the container that a map set creates: concurrent
// creations with equal keys merge.
type aliasKey struct {
	m       vref
	key     string
	kind    Kind
	lamport uint64
}

// validator checks an update against a document without changing it.
type validator struct {
	d        *Doc
	u        *update
	refs     []vref
	resolved []bool
	roots    map[rootKey]*pendingContainer
	created  map[opID]vref // nested containers created by the update
	aliases  map[aliasKey]vref
	pending  map[ReplicaID]*replicaPending
	// last caches the most recent entry of pending: an update mostly
	// carries long stretches of one replica's operations.
	lastReplica ReplicaID
	last        *replicaPending
	dropped     map[opID]bool // sets carried without value and not yet replaced
	added       []uint64      // elements inserted, by container table index
}

// replicaPending is the counter ranges, in order and up to next, that the
// operations of one replica validated so far add.
type replicaPending struct {
	next   uint64
	ranges []pendingRange
}

// pendingOf returns the pending state of replica r, or nil.
func (v *validator) pendingOf(r ReplicaID) *replicaPending {
	if v.last != nil && v.lastReplica == r {
		return v.last
	}
	p := v.pending[r]
	if p != nil {
		v.lastReplica, v.last = r, p
	}
	return p
}

// validate checks, without changing anything, that every operation of u
// that the document lacks refers only to what the document or an earlier
// operation of u contains. Origins and delete targets must be elements of
// the operation's own container, replaced sets must be sets of the same
// key, and nested containers must exist with the stated type. u must be
// ready, so that a reference that fails to resolve is a fault of the
// update, not a missing cause.
func (d *Doc) validate(u *update) error {
	v := &validator{
		d:        d,
		u:        u,
		refs:     make([]vref, len(u.containers)),
		resolved: make([]bool, len(u.containers)),
		roots:    make(map[rootKey]*pendingContainer),
		created:  make(map[opID]vref),
		aliases:  make(map[aliasKey]vref),
		pending:  make(map[ReplicaID]*replicaPending),
		dropped:  make(map[opID]bool),
		added:    make([]uint64, len(u.containers)),
	}
	for i := range u.ops {
		if err := v.op(i); err != nil {
			o := &u.ops[i]
			return fmt.Errorf("apply update: operation %d of replica %d at counter %d: %w: %w",
				i, o.id.replica, o.id.counter, err, ErrInvalidUpdate)
		}
	}
	for id := range v.dropped {
		return fmt.Errorf("apply update: map set %d:%d travels without its value, but no operation replaces it: %w",
			id.replica, id.counter, ErrInvalidUpdate)
	}
	// Concurrent creations that merged may give one container several
	// table entries, so the counts add up per container.
	added := make(map[vref]uint64)
	for i, n := range v.added {
		if n > 0 {
			added[v.refs[i]] += n
		}
	}
	for ref, n := range added {
		var total uint64
		if ref.c != nil {
			total = uint64(ref.c.tree.root.total)
		}
		if n > maxTextLength || total+n > maxTextLength {
			return fmt.Errorf("apply update: a %s would exceed %d elements: %w", ref.kind(), uint64(maxTextLength), ErrInvalidUpdate)
		}
	}
	return nil
}

func (v *validator) nextOf(r ReplicaID) uint64 {
	if p := v.pendingOf(r); p != nil {
		return p.next
	}
	return v.d.applied(r)
}

// resolve returns the container of table entry i. A nested container must
// exist in the document or have been created by an earlier operation of
// the update.
func (v *validator) resolve(i int) (vref, error) {
	if v.resolved[i] {
		return v.refs[i], nil
	}
	ref := v.u.containers[i]
	var r vref
	switch {
	case ref.creator.isNone():
		key := rootKey{ref.name, ref.kind}
		if c := v.d.roots[key]; c != nil {
			r.c = c
		} else {
			if v.roots[key] == nil {
				v.roots[key] = &pendingContainer{kind: ref.kind}
			}
			r.p = v.roots[key]
		}
	case ref.creator.counter < v.d.applied(ref.creator.replica):
		c := v.d.nested[ref.creator]
		if c == nil || c.kind != ref.kind {
			return r, fmt.Errorf("container %d:%d is not a nested %s", ref.creator.replica, ref.creator.counter, ref.kind)
		}
		r.c = c
	default:
		var ok bool
		r, ok = v.created[ref.creator]
		if !ok || r.kind() != ref.kind {
			return r, fmt.Errorf("container %d:%d is not a nested %s created by an earlier operation", ref.creator.replica, ref.creator.counter, ref.kind)
		}
	}
	v.refs[i], v.resolved[i] = r, true
	return r, nil
}

// findPending returns the pending range of replica r that holds counter.
func (v *validator) findPending(r ReplicaID, counter uint64) (pendingRange, bool) {
	p := v.pendingOf(r)
	if p == nil {
		return pendingRange{}, false
	}
	ranges := p.ranges
	// Origins mostly lie in the operation just before.
	if n := len(ranges); n > 0 && ranges[n-1].start <= counter && counter < ranges[n-1].end {
		return ranges[n-1], true
	}
	i := sort.Search(len(ranges), func(i int) bool { return ranges[i].end > counter })
	if i == len(ranges) || ranges[i].start > counter {
		return pendingRange{}, false
	}
	return ranges[i], true
}

// insertedRange reports whether [a, b) of replica r are all inserted
// elements of container ref.
func (v *validator) insertedRange(r ReplicaID, a, b uint64, ref vref) bool {
	applied := v.d.applied(r)
	for a < b {
		if a < applied {
			it, _ := v.d.replicas[r].items.find(a)
			if it == nil || ref.c == nil || it.owner != ref.c {
				return false
			}
			a = min(it.end(), b)
			continue
		}
		p, ok := v.findPending(r, a)
		if !ok || p.ref != ref {
			return false
		}
		switch v.u.ops[p.op].kind {
		case opInsert, opInsertDeleted, opListInsert:
		default:
			return false
		}
		a = min(p.end, b)
	}
	return true
}

func (v *validator) inserted(id opID, ref vref) bool {
	return id.isNone() || v.insertedRange(id.replica, id.counter, id.counter+1, ref)
}

// setLamport returns the Lamport time of id if it is a set of key in map
// ref.
func (v *validator) setLamport(id opID, ref vref, key string) (uint64, bool) {
	if id.counter < v.d.applied(id.replica) {
		a := v.d.replicas[id.replica].findAtom(id.counter)
		if a == nil || a.kind != opMapSet || ref.c == nil || a.owner != ref.c || a.key != key {
			return 0, false
		}
		return a.lamport, true
	}
	p, ok := v.findPending(id.replica, id.counter)
	if !ok || p.ref != ref {
		return 0, false
	}
	o := &v.u.ops[p.op]
	if o.kind != opMapSet || o.atom.key != key {
		return 0, false
	}
	return o.atom.lamport, true
}

// op validates operation i and records what it adds.
func (v *validator) op(i int) error {
	o := &v.u.ops[i]
	cur := v.nextOf(o.id.replica)
	if o.end() <= cur {
		return nil
	}
	if o.id.counter > cur {
		return fmt.Errorf("the document has only %d operations of the replica", cur)
	}
	ref, err := v.resolve(o.container)
	if err != nil {
		return err
	}

	switch o.kind {
	case opInsert, opInsertDeleted, opListInsert:
		if err := v.insert(o, cur, ref); err != nil {
			return err
		}
	case opDelete:
		for _, t := range o.targets {
			lo, hi := t.target.counter, t.target.counter+t.length
			if t.backward {
				lo, hi = t.target.counter+1-t.length, t.target.counter+1
			}
			if !v.insertedRange(t.target.replica, lo, hi, ref) {
				return fmt.Errorf("it deletes %d:%d to %d:%d, which are not all inserted elements of its %s",
					t.target.replica, lo, t.target.replica, hi-1, ref.kind())
			}
		}
	case opMapSet, opMapRemove:
		if err := v.mapOp(o, ref); err != nil {
			return err
		}
	}

	p := v.pendingOf(o.id.replica)
	if p == nil {
		p = &replicaPending{}
		v.pending[o.id.replica] = p
		v.lastReplica, v.last = o.id.replica, p
	}
	p.ranges = append(p.ranges, pendingRange{start: cur, end: o.end(), op: i, ref: ref})
	p.next = o.end()
	return nil
}

func (v *validator) insert(o *op, cur uint64, ref vref) error {
	left := o.left
	if cur > o.id.counter {
		left = opID{replica: o.id.replica, counter: cur - 1}
	}
	for _, origin := range []opID{left, o.right} {
		if !v.inserted(origin, ref) {
			return fmt.Errorf("its origin %d:%d is not an inserted element of its %s", origin.replica, origin.counter, ref.kind())
		}
	}
	if ref.c != nil && !v.d.originsInOrder(ref.c, left, o.right) {
		return fmt.Errorf("its right origin %d:%d comes before its left origin %d:%d",
			o.right.replica, o.right.counter, left.replica, left.counter)
	}
	skip := int(cur - o.id.counter)
	for k := skip; k < len(o.values); k++ {
		if m, ok := o.values[k].(kindMarker); ok {
			v.created[o.id.plus(k)] = vref{p: &pendingContainer{kind: Kind(m)}}
		}
	}
	for _, m := range o.markers {
		if m.off >= uint64(skip) {
			v.created[o.id.plus(int(m.off))] = vref{p: &pendingContainer{kind: m.kind}}
		}
	}
	v.added[o.container] += o.end() - cur
	return nil
}

func (v *validator) mapOp(o *op, ref vref) error {
	a := o.atom
	for _, p := range a.preds {
		lamport, ok := v.setLamport(p, ref, a.key)
		if !ok {
			return fmt.Errorf("it replaces %d:%d, which is not a set of key %q of its map", p.replica, p.counter, a.key)
		}
		if lamport >= a.lamport {
			return fmt.Errorf("its Lamport time %d is not above the time %d of the set %d:%d it replaces", a.lamport, lamport, p.replica, p.counter)
		}
		delete(v.dropped, p)
	}
	switch val := a.value.(type) {
	case droppedValue:
		v.dropped[o.id] = true
	case kindMarker:
		if ref.c != nil {
			if c := ref.c.keys[a.key].findCreated(Kind(val), a.lamport); c != nil {
				v.created[o.id] = vref{c: c}
				return nil
			}
		}
		key := aliasKey{m: ref, key: a.key, kind: Kind(val), lamport: a.lamport}
		r, ok := v.aliases[key]
		if !ok {
			r = vref{p: &pendingContainer{kind: Kind(val)}}
			v.aliases[key] = r
		}
		v.created[o.id] = r
	}
	return nil
}

// originsInOrder reports whether left comes before right in c, as it does
// for every insert that a replica made. Origins the document does not have
// yet, because an earlier operation of the same update inserts them, pass
// unchecked.
func (d *Doc) originsInOrder(c *container, left, right opID) bool {
	if left.isNone() || right.isNone() ||
		left.counter >= d.applied(left.replica) || right.counter >= d.applied(right.replica) {
		return true
	}
	return d.leftIndex(c, left) < d.rightIndex(c, right)
}

// applyValidated applies the operations of u that the document lacks.
func (d *Doc) applyValidated(u *update) {
	containers := make([]*container, len(u.containers))
	resolve := func(i int) *container {
		if containers[i] == nil {
			ref := u.containers[i]
			if ref.creator.isNone() {
				containers[i] = d.ensureRoot(ref.name, ref.kind)
			} else {
				containers[i] = d.nested[ref.creator]
			}
		}
		return containers[i]
	}

	for i := range u.ops {
		o := &u.ops[i]
		rs := d.replicaState(o.id.replica)
		if o.end() <= rs.next {
			continue
		}
		skip := rs.next - o.id.counter
		c := resolve(o.container)

		switch o.kind {
		case opInsert, opInsertDeleted, opListInsert:
			it := d.newItem(item{
				id:      o.id.plus(int(skip)),
				length:  int(o.length - skip),
				left:    o.left,
				right:   o.right,
				deleted: o.kind == opInsertDeleted || o.deleted,
				owner:   c,
			})
			if skip > 0 {
				it.left = o.id.plus(int(skip) - 1)
			}
			switch o.kind {
			case opInsert:
				it.content = o.content[skip:]
			case opListInsert:
				it.values = part(o.values, int(skip), len(o.values))
				for k, v := range it.values {
					if m, ok := v.(kindMarker); ok {
						it.values[k] = d.newElement(Kind(m), it.id.plus(k), c)
					}
				}
				for _, m := range o.markers {
					if m.off >= skip {
						d.newElement(m.kind, o.id.plus(int(m.off)), c)
					}
				}
			}
			d.integrate(c, rs, it)
		case opDelete:
			d.applyDelete(rs, o, skip)
		default:
			o.atom.owner = c
			d.applyAtom(rs, o.atom)
		}
		d.touch(c)

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
func (d *Doc) integrate(t *container, rs *replicaState, it *item) {
	// The right origin is split off first, so that leftItem ends at the
	// left origin even for an update whose right origin lies in the same
	// run at or before its left origin, which no replica makes. The scan
	// below then starts after the left origin and places the run after
	// it, as loading checks.
	var leftItem, rightItem *item
	if !it.right.isNone() {
		var off int
		rightItem, off = d.replicas[it.right.replica].items.find(it.right.counter)
		if off > 0 {
			rightItem = d.splitItem(rightItem, off)
		}
	}
	if !it.left.isNone() {
		var off int
		leftItem, off = d.replicas[it.left.replica].items.find(it.left.counter)
		if off < leftItem.length-1 {
			d.splitItem(leftItem, off+1)
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
		prev.values = append(prev.values, it.values...)
		prev.length += it.length
		t.tree.addCounts(prev.leaf, it.visibleLength(), it.length)
		return
	}
	t.tree.insertBefore(dest, it)
	rs.items.add(it)
}

// leftIndex returns the document index of a left origin, -1 for none.
func (d *Doc) leftIndex(t *container, id opID) int {
	if id.isNone() {
		return -1
	}
	it, off := d.replicas[id.replica].items.find(id.counter)
	return t.tree.indexOf(it) + off
}

// rightIndex returns the document index of a right origin, the text's
// total length for none.
func (d *Doc) rightIndex(t *container, id opID) int {
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

// deleteRange turns the elements [lo, hi) of replica r into tombstones.
// Elements already deleted, by a concurrent delete, stay as they are.
func (d *Doc) deleteRange(r ReplicaID, lo, hi uint64) {
	rs := d.replicas[r]
	for c := lo; c < hi; {
		it, off := rs.items.find(c)
		k := min(uint64(it.length-off), hi-c)
		if !it.deleted {
			d.deletePart(it, -1, off, int(k))
		}
		c += k
	}
}
