package crdt

import (
	"fmt"
	"slices"
	"unicode/utf8"
)

// Update format, version 1. All integers are unsigned LEB128 varints
// unless noted.
//
//	byte       tagUpdate
//	replicas   count, then each replica id as 8 bytes little-endian.
//	           Later fields name replicas by their index in this table.
//	deps       count, then (replica index, counter) pairs. The update
//	           needs operations [0, counter) of each listed replica.
//	containers count, then per container: kind byte, type byte (a Kind),
//	           then for kind 0 (root) the name as length-prefixed UTF-8,
//	           for kind 1 (nested) the id of the operation that created
//	           it as (replica index, counter)
//	ops        count, then per operation:
//	             kind byte, container index, replica index, first counter,
//	             then by kind:
//	             1 text insert:    length, left origin, right origin,
//	                               content as length-prefixed UTF-8 of
//	                               length code points
//	             2 text insert of  length, left origin, right origin, for
//	               deleted text:   code points deleted before the update
//	                               was made, which travel without content
//	             3 delete:         target count, then per target run:
//	                               replica index, counter, length, backward
//	                               byte. The operation's length is the
//	                               targets' sum. Texts and lists.
//	             4 list insert:    length, left origin, right origin, flags
//	                               byte, then for flags 0 length values,
//	                               and for flags 1, elements deleted before
//	                               the update was made, which travel
//	                               without values, the nested containers
//	                               among them: count, then (offset from
//	                               the previous one's offset + 1, type
//	                               byte) pairs
//	             5 map set:        key, Lamport time, replaced sets, value
//	             6 map remove:     key, Lamport time, replaced sets
//	             7 counter add:    amount as a zigzag varint
//	origin     0 for none, else replica index + 1 followed by the counter
//	replaced   count, then ids as (replica index, counter), ascending
//	value      tag byte, then by tag: 0 null, 1 false, 2 true, 3 integer
//	           (zigzag varint), 4 integer above the int64 range, 5 float64
//	           (8 bytes little-endian), 6 string, 7 array (count, values),
//	           8 object (count, then key and value pairs in ascending key
//	           order), 9 new nested container (type byte), 10 dropped: the
//	           value of a replaced map set, which travels without content
//
// Map and counter operations take one counter each; inserts and deletes
// take one per element. Operations of one replica within an update have
// consecutive counters. A replica can apply an update once it has applied
// the operations that deps names and, for each replica whose operations
// the update carries, all operations of that replica before the first one
// carried.
const tagUpdate = 0x01

// Container kinds in the container table.
const (
	containerRoot   = 0
	containerNested = 1
)

// containerRef names a container in an update: a root by name and type, a
// nested container by its type and the operation that created it.
type containerRef struct {
	kind    Kind
	name    string
	creator opID // noID for roots
}

type opKind byte

const (
	opInsert        opKind = 1 // insert code points
	opInsertDeleted opKind = 2 // insert code points already deleted; no content
	opDelete        opKind = 3 // delete elements, one operation each
	opListInsert    opKind = 4 // insert list elements
	opMapSet        opKind = 5
	opMapRemove     opKind = 6
	opCounterAdd    opKind = 7
)

// op is one decoded operation: a run of consecutive counters of one
// replica in one container.
type op struct {
	kind      opKind
	deleted   bool   // opListInsert: the elements were deleted
	container int    // index into update.containers
	id        opID   // first counter
	length    uint64 // counters used
	left      opID   // inserts: left origin of the first element
	right     opID   // inserts: right origin of every element
	content   []rune // opInsert only
	// values holds the elements of a live opListInsert: plain values, and
	// kindMarker for new nested containers.
	values []any
	// markers lists the nested containers among the elements of a
	// deleted opListInsert.
	markers []elementMarker
	targets []deleteRun // opDelete
	atom    *atom       // map and counter operations
}

// elementMarker is a deleted list element that holds a nested container.
type elementMarker struct {
	off  uint64 // offset in the operation
	kind Kind
}

func (o *op) end() uint64 { return o.id.counter + o.length }

// update is a decoded update.
type update struct {
	deps       VersionVector
	containers []containerRef
	ops        []op
	starts     map[ReplicaID]uint64 // first counter of each replica's operations
}

// coveredBy reports whether every operation of u is among the operations
// [0, applied(r)) of its replica r.
func (u *update) coveredBy(applied func(ReplicaID) uint64) bool {
	for i := range u.ops {
		o := &u.ops[i]
		if o.end() > applied(o.id.replica) {
			return false
		}
	}
	return true
}

// ready reports whether the document has applied all causes of u.
func (d *Doc) ready(u *update) bool {
	for r, c := range u.deps {
		if d.applied(r) < c {
			return false
		}
	}
	for r, start := range u.starts {
		if d.applied(r) < start {
			return false
		}
	}
	return true
}

// collect builds an update with the applied operations in spans. The
// spans must be in causal order, and the spans of one replica must follow
// each other without gaps, as the update format requires. Deleted
// elements and replaced map values travel without content.
func (d *Doc) collect(spans []span) *update {
	b := updateBuilder{
		u:          &update{deps: VersionVector{}},
		containers: make(map[*container]int),
		ranges:     make(map[ReplicaID]span),
	}
	// Growing the operations by appending alone would allocate several
	// times their final size when an update carries a long history.
	estimate := 0
	for _, s := range spans {
		estimate += d.replicas[s.replica].opsIn(s.start, s.end)
	}
	b.u.ops = make([]op, 0, estimate)
	cursors := make(map[ReplicaID]*opCursor)
	for _, s := range spans {
		if r, ok := b.ranges[s.replica]; ok {
			b.ranges[s.replica] = span{replica: s.replica, start: min(r.start, s.start), end: max(r.end, s.end)}
		} else {
			b.ranges[s.replica] = s
		}
		rs := d.replicas[s.replica]
		cur := cursors[s.replica]
		if cur == nil {
			cur = &opCursor{rs: rs}
			cursors[s.replica] = cur
		}
		cur.seek(s.start)
		for c := s.start; c < s.end; {
			end := c + 1
			switch it, run, a := cur.at(c); {
			case run != nil:
				end = b.addDeletes(d, s.replica, *run, c, min(s.end, run.end()))
			case it != nil:
				end = min(s.end, it.end())
				b.addInsert(rs, it, int(c-it.id.counter), end)
			default:
				b.u.ops = append(b.u.ops, op{kind: a.kind, container: b.container(a.owner), id: a.id, length: 1, left: noID, right: noID, atom: a})
			}
			cur.passed(end)
			c = end
		}
	}
	b.computeDeps()
	return b.u
}

// coverGaps turns spans into one span per replica, from its lowest start
// to its highest end, ordered by first appearance. Local operations
// normally have consecutive counters. A gap arises only when operations
// under the local replica id arrived from elsewhere, and covering it
// re-sends operations that receivers skip.
func coverGaps(spans []span) []span {
	var out []span
	pos := make(map[ReplicaID]int)
	for _, s := range spans {
		i, ok := pos[s.replica]
		if !ok {
			pos[s.replica] = len(out)
			out = append(out, s)
			continue
		}
		out[i].start = min(out[i].start, s.start)
		out[i].end = max(out[i].end, s.end)
	}
	return out
}

type updateBuilder struct {
	u          *update
	containers map[*container]int
	ranges     map[ReplicaID]span // counters carried by the update
	last       *container         // container of the previous lookup
	lastIndex  int
	// The content and delete targets of joined operations are carved
	// from these, so that joining pieces neither copies the pieces before
	// them again nor allocates per operation.
	content arena[rune]
	targets arena[deleteRun]
}

// arena hands out slices carved from shared chunks of memory. A slice it
// handed out last grows in place, so joining pieces to it neither copies
// it again nor allocates.
type arena[T any] struct {
	chunk []T
}

// Sizes of an arena's chunks, in elements. Chunks double up to the limit,
// which keeps small arenas small.
const (
	minArenaChunk = 64
	maxArenaChunk = 1 << 14
)

// join returns run followed by more.
func (a *arena[T]) join(run []T, more ...T) []T {
	a.chunk = reserve(a.chunk, run, len(more))
	a.chunk = append(a.chunk, more...)
	return tail(a.chunk, len(run)+len(more))
}

// reserve returns chunk, or a new chunk, that ends with run and has room
// for more elements after it. run is copied only when it does not end
// chunk already or chunk has no room.
func reserve[T any](chunk, run []T, more int) []T {
	n := len(chunk)
	atEnd := len(run) > 0 && n > 0 && &run[len(run)-1] == &chunk[n-1]
	if atEnd && cap(chunk)-n >= more {
		return chunk
	}
	if cap(chunk)-n < len(run)+more {
		// A full chunk is left to the slices that use it, not copied.
		size := min(max(2*cap(chunk), minArenaChunk), maxArenaChunk)
		chunk = make([]T, 0, max(size, len(run)+more))
	}
	return append(chunk, run...)
}

// tail returns the last n elements of chunk with no spare capacity,
// because the space after them belongs to the arena.
func tail[T any](chunk []T, n int) []T {
	end := len(chunk)
	return chunk[end-n : end : end]
}

// container returns the index of c in the update's container table. A
// nested container is named by the operation that created it here first.
// A container merged from concurrent creations has other creators too,
// but receivers merge those creations the same way, so any of them names
// it.
func (b *updateBuilder) container(c *container) int {
	// Consecutive operations are mostly in one container.
	if c == b.last {
		return b.lastIndex
	}
	i, ok := b.containers[c]
	if !ok {
		i = len(b.u.containers)
		ref := containerRef{kind: c.kind, name: c.name, creator: c.id}
		b.u.containers = append(b.u.containers, ref)
		b.containers[c] = i
	}
	b.last, b.lastIndex = c, i
	return i
}

// addInsert adds the elements [off, end) of it, an item of rs, as
// counters.
func (b *updateBuilder) addInsert(rs *replicaState, it *item, off int, end uint64) {
	o := op{
		container: b.container(it.owner),
		id:        it.id.plus(off),
		left:      it.left,
		right:     it.right,
		deleted:   it.deleted,
	}
	o.length = end - o.id.counter
	n := int(o.length)
	if off > 0 {
		o.left = it.id.plus(off - 1)
	}
	switch {
	case it.owner.kind == KindList:
		o.kind = opListInsert
		o.values = part(it.values, off, off+n)
		if it.deleted {
			for _, c := range rs.elementsIn(o.id.counter, end) {
				o.markers = append(o.markers, elementMarker{off: c.id.counter - o.id.counter, kind: c.kind})
			}
		}
	case it.deleted:
		o.kind = opInsertDeleted
	default:
		o.kind = opInsert
		o.content = it.content[off : off+n]
	}

	if k := len(b.u.ops); k > 0 {
		last := &b.u.ops[k-1]
		if last.kind == o.kind && last.deleted == o.deleted && last.container == o.container && last.id.replica == o.id.replica &&
			last.end() == o.id.counter && o.left == last.id.plus(int(last.length)-1) && o.right == last.right {
			switch o.kind {
			case opInsert:
				last.content = b.content.join(last.content, o.content...)
			case opListInsert:
				last.values = append(slices.Clip(last.values), o.values...)
				for _, m := range o.markers {
					last.markers = append(last.markers, elementMarker{off: m.off + last.length, kind: m.kind})
				}
			}
			last.length += o.length
			return
		}
	}
	b.u.ops = append(b.u.ops, o)
}

// addDeletes adds the delete operations [c, end) of run, made by replica,
// split where the targets change container, and returns end.
func (b *updateBuilder) addDeletes(d *Doc, replica ReplicaID, run deleteRun, c, end uint64) uint64 {
	targets := d.replicas[run.target.replica]
	for c < end {
		target := run.targetAt(c)
		it, off := targets.items.find(target.counter)
		// The elements of one item belong to one container, so a piece
		// ends at the item's edge in the run's direction at the latest.
		n := uint64(it.length - off)
		if run.backward {
			n = uint64(off + 1)
		}
		n = min(n, end-c)
		piece := deleteRun{counter: c, length: n, target: target, backward: run.backward && n > 1}
		b.addDelete(replica, b.container(it.owner), piece)
		c += n
	}
	return end
}

func (b *updateBuilder) addDelete(replica ReplicaID, container int, piece deleteRun) {
	if n := len(b.u.ops); n > 0 {
		last := &b.u.ops[n-1]
		if last.kind == opDelete && last.container == container &&
			last.id.replica == replica && last.end() == piece.counter {
			if !extendDeleteRun(last.targets, piece) {
				last.targets = b.targets.join(last.targets, piece)
			}
			last.length += piece.length
			return
		}
	}
	b.u.ops = append(b.u.ops, op{
		kind:      opDelete,
		container: container,
		id:        opID{replica: replica, counter: piece.counter},
		length:    piece.length,
		left:      noID,
		right:     noID,
		targets:   b.targets.join(nil, piece),
	})
}

// computeDeps sets the update's dependencies to every operation that its
// operations refer to and that it does not carry itself: origins, delete
// targets, replaced map sets and the creators of nested containers.
func (b *updateBuilder) computeDeps() {
	need := func(id opID) {
		if id.isNone() {
			return
		}
		if s, ok := b.ranges[id.replica]; ok && id.counter >= s.start && id.counter < s.end {
			return
		}
		b.u.deps[id.replica] = max(b.u.deps[id.replica], id.counter+1)
	}
	for _, ref := range b.u.containers {
		need(ref.creator)
	}
	for i := range b.u.ops {
		o := &b.u.ops[i]
		need(o.left)
		need(o.right)
		for _, t := range o.targets {
			need(t.target)
			need(t.targetAt(t.end() - 1))
		}
		if o.atom != nil {
			for _, p := range o.atom.preds {
				need(p)
			}
		}
	}
}

// encodeUpdate writes u in the update format.
func encodeUpdate(u *update) []byte {
	replicas := make(map[ReplicaID]uint64)
	var table []ReplicaID
	index := func(r ReplicaID) uint64 {
		i, ok := replicas[r]
		if !ok {
			i = uint64(len(table))
			replicas[r] = i
			table = append(table, r)
		}
		return i
	}
	deps := sortedReplicas(u.deps)
	for _, r := range deps {
		index(r)
	}
	for _, c := range u.containers {
		if !c.creator.isNone() {
			index(c.creator.replica)
		}
	}
	for i := range u.ops {
		o := &u.ops[i]
		index(o.id.replica)
		for _, id := range []opID{o.left, o.right} {
			if !id.isNone() {
				index(id.replica)
			}
		}
		for _, t := range o.targets {
			index(t.target.replica)
		}
		if o.atom != nil {
			for _, p := range o.atom.preds {
				index(p.replica)
			}
		}
	}

	var e encoder
	e.byte(tagUpdate)
	e.uvarint(uint64(len(table)))
	for _, r := range table {
		e.replicaID(uint64(r))
	}
	e.uvarint(uint64(len(deps)))
	for _, r := range deps {
		e.uvarint(replicas[r])
		e.uvarint(u.deps[r])
	}
	e.uvarint(uint64(len(u.containers)))
	for _, c := range u.containers {
		if c.creator.isNone() {
			e.byte(containerRoot)
			e.byte(byte(c.kind))
			e.string(c.name)
			continue
		}
		e.byte(containerNested)
		e.byte(byte(c.kind))
		e.uvarint(replicas[c.creator.replica])
		e.uvarint(c.creator.counter)
	}
	origin := func(id opID) {
		if id.isNone() {
			e.uvarint(0)
			return
		}
		e.uvarint(replicas[id.replica] + 1)
		e.uvarint(id.counter)
	}
	e.uvarint(uint64(len(u.ops)))
	for i := range u.ops {
		o := &u.ops[i]
		e.byte(byte(o.kind))
		e.uvarint(uint64(o.container))
		e.uvarint(replicas[o.id.replica])
		e.uvarint(o.id.counter)
		switch o.kind {
		case opInsert, opInsertDeleted:
			e.uvarint(o.length)
			origin(o.left)
			origin(o.right)
			if o.kind == opInsert {
				e.utf8Runes(o.content)
			}
		case opListInsert:
			e.uvarint(o.length)
			origin(o.left)
			origin(o.right)
			e.flag(o.deleted)
			if o.deleted {
				encodeMarkers(&e, o.markers)
			} else {
				for _, v := range o.values {
					e.value(v)
				}
			}
		case opDelete:
			e.uvarint(uint64(len(o.targets)))
			for _, t := range o.targets {
				e.uvarint(replicas[t.target.replica])
				e.uvarint(t.target.counter)
				e.uvarint(t.length)
				e.byte(boolByte(t.backward))
			}
		case opMapSet, opMapRemove:
			a := o.atom
			e.string(a.key)
			e.uvarint(a.lamport)
			e.uvarint(uint64(len(a.preds)))
			for _, p := range a.preds {
				e.uvarint(replicas[p.replica])
				e.uvarint(p.counter)
			}
			if o.kind == opMapSet {
				e.value(a.value)
			}
		case opCounterAdd:
			e.varint(o.atom.amount)
		}
	}
	return e.buf
}

// encodeMarkers writes the nested containers of deleted list elements.
func encodeMarkers(e *encoder, markers []elementMarker) {
	e.uvarint(uint64(len(markers)))
	next := uint64(0)
	for _, m := range markers {
		e.uvarint(m.off - next)
		e.byte(byte(m.kind))
		next = m.off + 1
	}
}

// markers reads what encodeMarkers writes, for a run of length elements.
func (d *decoder) markers(length uint64) []elementMarker {
	n := d.count(2)
	if n == 0 {
		return nil
	}
	out := make([]elementMarker, n)
	next := uint64(0)
	for i := range out {
		gap := d.uvarint()
		k := Kind(d.byte())
		if d.err != nil {
			return nil
		}
		if gap >= length || next+gap >= length || !k.valid() {
			d.fail(fmt.Errorf("nested container at offset %d+%d of a %s in a run of %d", next, gap, k, length))
			return nil
		}
		out[i] = elementMarker{off: next + gap, kind: k}
		next = out[i].off + 1
	}
	return out
}

// decodeUpdate parses and checks the syntax of an update. Whether its
// references exist is checked against a document by Doc.validate.
func decodeUpdate(data []byte) (*update, error) {
	u, err := parseUpdate(data)
	if err != nil {
		return nil, fmt.Errorf("decode update of %d bytes: %w: %w", len(data), ErrInvalidUpdate, err)
	}
	return u, nil
}

// opContainerKinds lists the container types that each operation kind
// applies to.
var opContainerKinds = map[opKind][]Kind{
	opInsert:        {KindText},
	opInsertDeleted: {KindText},
	opDelete:        {KindText, KindList},
	opListInsert:    {KindList},
	opMapSet:        {KindMap},
	opMapRemove:     {KindMap},
	opCounterAdd:    {KindCounter},
}

func parseUpdate(data []byte) (*update, error) {
	dec := decoder{buf: data}
	if tag := dec.byte(); dec.err == nil && tag != tagUpdate {
		return nil, fmt.Errorf("first byte %#x is not the update tag %#x", tag, tagUpdate)
	}

	table := make([]ReplicaID, dec.count(8))
	seen := make(map[ReplicaID]bool, len(table))
	for i := range table {
		table[i] = ReplicaID(dec.replicaID())
		if dec.err == nil && seen[table[i]] {
			return nil, fmt.Errorf("replica %d listed twice", table[i])
		}
		seen[table[i]] = true
	}
	replica := func() ReplicaID {
		i := dec.uvarint()
		if dec.err == nil && i >= uint64(len(table)) {
			dec.fail(fmt.Errorf("replica index %d outside a table of %d", i, len(table)))
			return 0
		}
		if dec.err != nil {
			return 0
		}
		return table[i]
	}
	counter := func() uint64 {
		c := dec.uvarint()
		if dec.err == nil && c > maxCounter {
			dec.fail(fmt.Errorf("counter %d above the maximum %d", c, uint64(maxCounter)))
		}
		return c
	}
	id := func() opID {
		r := replica()
		return opID{replica: r, counter: counter()}
	}

	u := &update{deps: VersionVector{}, starts: make(map[ReplicaID]uint64)}
	for range dec.count(2) {
		r := replica()
		c := counter()
		if dec.err != nil {
			break
		}
		if _, dup := u.deps[r]; dup {
			return nil, fmt.Errorf("dependency on replica %d listed twice", r)
		}
		u.deps[r] = c
	}

	u.containers = make([]containerRef, dec.count(3))
	refs := make(map[containerRef]bool, len(u.containers))
	for i := range u.containers {
		ref, err := parseContainerRef(&dec, id)
		if dec.err != nil {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("container %d: %w", i, err)
		}
		if refs[ref] {
			return nil, fmt.Errorf("container %d (%s) listed twice", i, ref.kind)
		}
		refs[ref] = true
		u.containers[i] = ref
	}

	origin := func() opID {
		i := dec.uvarint()
		if i == 0 || dec.err != nil {
			return noID
		}
		if i > uint64(len(table)) {
			dec.fail(fmt.Errorf("origin replica index %d outside a table of %d", i-1, len(table)))
			return noID
		}
		return opID{replica: table[i-1], counter: counter()}
	}

	next := make(map[ReplicaID]uint64) // end of each replica's last operation so far
	u.ops = make([]op, dec.count(4))
	if dec.err == nil && len(u.ops) == 0 {
		return nil, fmt.Errorf("update has no operations")
	}
	for i := range u.ops {
		o := &u.ops[i]
		o.kind = opKind(dec.byte())
		container := dec.uvarint()
		o.id = id()
		o.left, o.right = noID, noID
		if dec.err != nil {
			break
		}
		kinds, known := opContainerKinds[o.kind]
		if !known {
			return nil, fmt.Errorf("operation %d has unknown kind %d", i, o.kind)
		}
		if container >= uint64(len(u.containers)) {
			return nil, fmt.Errorf("operation %d: container index %d outside a table of %d", i, container, len(u.containers))
		}
		o.container = int(container)
		if k := u.containers[o.container].kind; !slices.Contains(kinds, k) {
			return nil, fmt.Errorf("operation %d of kind %d applies to a %s", i, o.kind, k)
		}

		var err error
		switch o.kind {
		case opInsert, opInsertDeleted, opListInsert:
			err = parseInsert(&dec, o, origin)
		case opDelete:
			err = parseDelete(&dec, o, id)
		default:
			err = parseAtom(&dec, o, id)
		}
		if dec.err != nil {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("operation %d: %w", i, err)
		}

		if o.length == 0 || o.length > maxCounter || o.end() > maxCounter {
			return nil, fmt.Errorf("operation %d: length %d at counter %d is out of range", i, o.length, o.id.counter)
		}
		if end, ok := next[o.id.replica]; ok && end != o.id.counter {
			return nil, fmt.Errorf("operation %d: replica %d counter %d does not follow its previous operation, which ended at %d",
				i, o.id.replica, o.id.counter, end)
		}
		if _, ok := next[o.id.replica]; !ok {
			u.starts[o.id.replica] = o.id.counter
		}
		next[o.id.replica] = o.end()
	}

	if err := dec.finish(); err != nil {
		return nil, err
	}
	return u, nil
}

func parseContainerRef(dec *decoder, id func() opID) (containerRef, error) {
	kind := dec.byte()
	ref := containerRef{kind: Kind(dec.byte()), creator: noID}
	switch kind {
	case containerRoot:
		name := dec.bytes()
		if dec.err == nil && !utf8.Valid(name) {
			return ref, fmt.Errorf("name: %w", ErrInvalidUTF8)
		}
		ref.name = string(name)
	case containerNested:
		ref.creator = id()
	default:
		return ref, fmt.Errorf("unknown container kind %d", kind)
	}
	if !ref.kind.valid() {
		return ref, fmt.Errorf("unknown container type %d", ref.kind)
	}
	return ref, nil
}

func parseInsert(dec *decoder, o *op, origin func() opID) error {
	o.length = dec.uvarint()
	o.left = origin()
	o.right = origin()
	if dec.err != nil {
		return nil
	}
	switch o.kind {
	case opInsert:
		content := dec.bytes()
		if dec.err != nil {
			return nil
		}
		runes, ok := decodeRunes(content, o.length)
		if !ok {
			return fmt.Errorf("content is not %d code points of valid UTF-8", o.length)
		}
		o.content = runes
	case opListInsert:
		o.deleted = dec.flag()
		if o.deleted {
			o.markers = dec.markers(o.length)
			break
		}
		// Every value takes a byte at least, which bounds the allocation.
		if o.length > uint64(dec.remaining()) {
			dec.fail(errTruncated)
			return nil
		}
		o.values = make([]any, o.length)
		for k := range o.values {
			o.values[k] = dec.value(0)
			if _, ok := o.values[k].(droppedValue); ok {
				return fmt.Errorf("element %d of a live run is dropped", k)
			}
		}
	}
	return nil
}

func parseDelete(dec *decoder, o *op, id func() opID) error {
	n := dec.count(4)
	o.targets = make([]deleteRun, 0, n)
	c := o.id.counter
	for range n {
		t := deleteRun{counter: c, target: id()}
		t.length = dec.uvarint()
		t.backward = dec.flag()
		if dec.err != nil {
			return nil
		}
		if t.length == 0 || t.length > maxCounter ||
			(!t.backward && t.target.counter+t.length > maxCounter) ||
			(t.backward && t.target.counter+1 < t.length) {
			return fmt.Errorf("delete target run of length %d at %d is out of range", t.length, t.target.counter)
		}
		o.targets = append(o.targets, t)
		o.length += t.length
		c += t.length
		if o.length > maxCounter {
			return fmt.Errorf("deletes more than %d elements", uint64(maxCounter))
		}
	}
	return nil
}

func parseAtom(dec *decoder, o *op, id func() opID) error {
	a := &atom{id: o.id, kind: o.kind}
	o.atom = a
	o.length = 1
	if o.kind == opCounterAdd {
		a.amount = dec.varint()
		return nil
	}

	key := dec.bytes()
	a.lamport = dec.uvarint()
	n := dec.count(2)
	if dec.err != nil {
		return nil
	}
	if !utf8.Valid(key) {
		return fmt.Errorf("key: %w", ErrInvalidUTF8)
	}
	a.key = string(key)
	if a.lamport == 0 || a.lamport > maxCounter {
		return fmt.Errorf("Lamport time %d is outside 1 to %d", a.lamport, uint64(maxCounter))
	}
	a.preds = make([]opID, n)
	for k := range a.preds {
		a.preds[k] = id()
		if dec.err != nil {
			return nil
		}
		if k > 0 && compareIDs(a.preds[k-1], a.preds[k]) >= 0 {
			return fmt.Errorf("replaced sets are not in ascending order")
		}
		if a.preds[k] == o.id {
			return fmt.Errorf("operation replaces itself")
		}
	}
	if o.kind == opMapSet {
		a.value = dec.value(0)
	}
	return nil
}
