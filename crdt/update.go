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
//	containers count, then per container: kind byte (0 = root), type
//	           byte (1 = text), name as length-prefixed UTF-8
//	ops        count, then per operation:
//	             kind byte, container index, replica index, first counter,
//	             then by kind:
//	             insert:         length, left origin, right origin, content
//	                             as length-prefixed UTF-8 of length code
//	                             points
//	             insert deleted: length, left origin, right origin, for
//	                             code points deleted before the update was
//	                             made, which travel without content
//	             delete:         target count, then per target run: replica
//	                             index, counter, length, backward byte. The
//	                             operation's length is the targets' sum.
//	origin     0 for none, else replica index + 1 followed by the counter
//
// Operations of one replica within an update have consecutive counters.
// A replica can apply an update once it has applied the operations that
// deps names and, for each replica whose operations the update carries,
// all operations of that replica before the first one carried. Containers
// are named by kind and type so that list, map, counter and nested
// containers can be added without changing this framing.
const tagUpdate = 0x01

type containerType byte

const typeText containerType = 1

const containerRoot = 0

type containerRef struct {
	typ  containerType
	name string
}

type opKind byte

const (
	opInsert        opKind = 1 // insert code points
	opInsertDeleted opKind = 2 // insert code points already deleted; no content
	opDelete        opKind = 3 // delete code points, one operation each
)

// op is one decoded operation: a run of consecutive counters of one
// replica in one container.
type op struct {
	kind      opKind
	container int    // index into update.containers
	id        opID   // first counter
	length    uint64 // counters used: code points inserted or deleted
	left      opID   // inserts: left origin of the first code point
	right     opID   // inserts: right origin of every code point
	content   []rune // opInsert only
	targets   []deleteRun
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
// each other without gaps, as the update format requires. Deleted code
// points travel without content.
func (d *Doc) collect(spans []span) *update {
	b := updateBuilder{
		u:          &update{deps: VersionVector{}},
		containers: make(map[containerRef]int),
		ranges:     make(map[ReplicaID]span),
	}
	for _, s := range spans {
		if r, ok := b.ranges[s.replica]; ok {
			b.ranges[s.replica] = span{replica: s.replica, start: min(r.start, s.start), end: max(r.end, s.end)}
		} else {
			b.ranges[s.replica] = s
		}
		rs := d.replicas[s.replica]
		for c := s.start; c < s.end; {
			if i := rs.findDelete(c); i >= 0 {
				c = b.addDeletes(d, s.replica, rs.deletes[i], c, min(s.end, rs.deletes[i].end()))
				continue
			}
			it, off := rs.items.find(c)
			end := min(s.end, it.end())
			b.addInsert(it, off, end)
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
	containers map[containerRef]int
	ranges     map[ReplicaID]span // counters carried by the update
}

func (b *updateBuilder) container(t *Text) int {
	ref := containerRef{typ: typeText, name: t.name}
	i, ok := b.containers[ref]
	if !ok {
		i = len(b.u.containers)
		b.u.containers = append(b.u.containers, ref)
		b.containers[ref] = i
	}
	return i
}

// addInsert adds the code points [off, end) of it, as counters.
func (b *updateBuilder) addInsert(it *item, off int, end uint64) {
	o := op{
		kind:      opInsert,
		container: b.container(it.text),
		id:        it.id.plus(off),
		left:      it.left,
		right:     it.right,
	}
	o.length = end - o.id.counter
	if off > 0 {
		o.left = it.id.plus(off - 1)
	}
	if it.deleted {
		o.kind = opInsertDeleted
	} else {
		o.content = it.content[off : off+int(o.length)]
	}

	if n := len(b.u.ops); n > 0 {
		last := &b.u.ops[n-1]
		if last.kind == o.kind && last.container == o.container && last.id.replica == o.id.replica &&
			last.end() == o.id.counter && o.left == last.id.plus(int(last.length)-1) && o.right == last.right {
			last.length += o.length
			if o.kind == opInsert {
				last.content = append(slices.Clip(last.content), o.content...)
			}
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
		// The code points of one item belong to one container, so a piece
		// ends at the item's edge in the run's direction at the latest.
		n := uint64(it.length - off)
		if run.backward {
			n = uint64(off + 1)
		}
		n = min(n, end-c)
		piece := deleteRun{counter: c, length: n, target: target, backward: run.backward && n > 1}
		b.addDelete(replica, b.container(it.text), piece)
		c += n
	}
	return end
}

func (b *updateBuilder) addDelete(replica ReplicaID, container int, piece deleteRun) {
	if n := len(b.u.ops); n > 0 {
		last := &b.u.ops[n-1]
		if last.kind == opDelete && last.container == container &&
			last.id.replica == replica && last.end() == piece.counter {
			last.targets = appendDeleteRun(last.targets, piece)
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
		targets:   []deleteRun{piece},
	})
}

// computeDeps sets the update's dependencies to every operation that its
// operations refer to and that it does not carry itself.
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
	for i := range b.u.ops {
		o := &b.u.ops[i]
		need(o.left)
		need(o.right)
		for _, t := range o.targets {
			need(t.target)
			need(t.targetAt(t.end() - 1))
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
		e.byte(containerRoot)
		e.byte(byte(c.typ))
		e.string(c.name)
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
				e.bytes(appendRunes(nil, o.content))
			}
		case opDelete:
			e.uvarint(uint64(len(o.targets)))
			for _, t := range o.targets {
				e.uvarint(replicas[t.target.replica])
				e.uvarint(t.target.counter)
				e.uvarint(t.length)
				e.byte(boolByte(t.backward))
			}
		}
	}
	return e.buf
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
	for i := range u.containers {
		kind := dec.byte()
		typ := containerType(dec.byte())
		name := dec.bytes()
		if dec.err != nil {
			break
		}
		if kind != containerRoot || typ != typeText {
			return nil, fmt.Errorf("container %d has kind %d and type %d; this version supports root texts only", i, kind, typ)
		}
		if !utf8.Valid(name) {
			return nil, fmt.Errorf("container %d: name: %w", i, ErrInvalidUTF8)
		}
		u.containers[i] = containerRef{typ: typ, name: string(name)}
		if slices.Contains(u.containers[:i], u.containers[i]) {
			return nil, fmt.Errorf("container %q listed twice", name)
		}
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
		o.id = opID{replica: replica(), counter: counter()}
		if dec.err != nil {
			break
		}
		if container >= uint64(len(u.containers)) {
			return nil, fmt.Errorf("operation %d: container index %d outside a table of %d", i, container, len(u.containers))
		}
		o.container = int(container)

		switch o.kind {
		case opInsert, opInsertDeleted:
			o.length = dec.uvarint()
			o.left = origin()
			o.right = origin()
			if o.kind == opInsert {
				content := dec.bytes()
				if dec.err != nil {
					break
				}
				runes, ok := decodeRunes(content, o.length)
				if !ok {
					return nil, fmt.Errorf("operation %d: content is not %d code points of valid UTF-8", i, o.length)
				}
				o.content = runes
			}
		case opDelete:
			o.left, o.right = noID, noID
			n := dec.count(4)
			o.targets = make([]deleteRun, 0, n)
			c := o.id.counter
			for range n {
				t := deleteRun{counter: c, target: opID{replica: replica(), counter: counter()}}
				t.length = dec.uvarint()
				t.backward = dec.flag()
				if dec.err != nil {
					break
				}
				if t.length == 0 || t.length > maxCounter ||
					(!t.backward && t.target.counter+t.length > maxCounter) ||
					(t.backward && t.target.counter+1 < t.length) {
					return nil, fmt.Errorf("operation %d: delete target run of length %d at %d is out of range", i, t.length, t.target.counter)
				}
				o.targets = append(o.targets, t)
				o.length += t.length
				c += t.length
				if o.length > maxCounter {
					return nil, fmt.Errorf("operation %d deletes more than %d code points", i, uint64(maxCounter))
				}
			}
		default:
			return nil, fmt.Errorf("operation %d has unknown kind %d", i, o.kind)
		}
		if dec.err != nil {
			break
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
