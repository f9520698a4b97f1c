package crdt

import (
	"bytes"
	"cmp"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"
)

// Load restores a document saved by Save. Local edits made after loading
// belong to replica. It may differ from the replica that saved, but then
// it must be an id that no other live replica uses. Edits that the saved
// document had not committed are returned by the next Commit either way.
//
// Load checks everything that the saved bytes could get wrong, so that a
// corrupt state returns an error wrapping ErrInvalidState instead of a
// document that fails later. Its cost grows with the number of runs and
// operations stored, plus one pass over the text content.
func Load(data []byte, replica ReplicaID) (*Doc, error) {
	body, err := decompressState(data)
	if err != nil {
		return nil, fmt.Errorf("load document of %d bytes: %w: %w", len(data), ErrInvalidState, err)
	}
	d, err := decodeState(body)
	if err != nil {
		return nil, fmt.Errorf("load document of %d bytes: %w: %w", len(data), ErrInvalidState, err)
	}
	d.setReplica(replica)
	return d, nil
}

// maxDeflateRatio is an upper bound on how many bytes DEFLATE expands one
// compressed byte to. It keeps a corrupt header from making Load allocate
// far more than the data could hold.
const maxDeflateRatio = 1032

func decompressState(data []byte) ([]byte, error) {
	dec := decoder{buf: data}
	tag := dec.byte()
	switch {
	case dec.err == nil && tag == tagStateV1:
		return nil, errors.New("saved state of format version 1, which this version cannot read; rebuild the document from its updates")
	case dec.err == nil && tag != tagState:
		return nil, fmt.Errorf("first byte %#x is not the saved state tag %#x", tag, tagState)
	}
	size := dec.uvarint()
	if dec.err != nil {
		return nil, dec.err
	}
	if size > maxStateBody {
		return nil, fmt.Errorf("body of %d bytes exceeds the maximum of %d", size, maxStateBody)
	}
	compressed := data[dec.pos:]
	if size > uint64(len(compressed))*maxDeflateRatio+64 {
		return nil, fmt.Errorf("body of %d bytes cannot come from %d compressed bytes", size, len(compressed))
	}

	r := flate.NewReader(bytes.NewReader(compressed))
	defer r.Close()
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("decompress %d bytes: %w", size, err)
	}
	if n, err := r.Read(make([]byte, 1)); n > 0 || (err != nil && err != io.EOF) {
		return nil, fmt.Errorf("decompressed body is longer than the %d bytes the header gives", size)
	}
	return body, nil
}

// stateDecoder holds what decodeState has read so far.
type stateDecoder struct {
	dec        decoder
	table      []ReplicaID
	doc        *Doc
	containers []*container
	// links lists the nested containers that list elements hold, to be
	// matched with the container table once it has been read.
	links []elementLink
}

// elementLink is a list element that holds a nested container.
type elementLink struct {
	it   *item
	off  int
	kind Kind
}

func (l elementLink) id() opID { return l.it.id.plus(l.off) }

func (s *stateDecoder) replica() ReplicaID {
	i := s.dec.uvarint()
	if s.dec.err == nil && i >= uint64(len(s.table)) {
		s.dec.fail(fmt.Errorf("replica index %d outside a table of %d", i, len(s.table)))
	}
	if s.dec.err != nil {
		return 0
	}
	return s.table[i]
}

func (s *stateDecoder) id() opID {
	r := s.replica()
	c := s.dec.uvarint()
	if s.dec.err == nil && c >= maxCounter {
		s.dec.fail(fmt.Errorf("counter %d above the maximum", c))
	}
	return opID{replica: r, counter: c}
}

// decodeState rebuilds a document from a saved body. It reads the parts in
// the order they depend on each other: replicas, containers with their
// items, deletes, and map and counter operations. Then it runs the checks
// that span parts, and last it replays the map and counter operations.
func decodeState(body []byte) (*Doc, error) {
	s := &stateDecoder{dec: decoder{buf: body}, doc: newDoc()}
	dec := &s.dec
	d := s.doc

	s.table = make([]ReplicaID, dec.count(8))
	for i := range s.table {
		s.table[i] = ReplicaID(dec.replicaID())
		if dec.err == nil && i > 0 && s.table[i] <= s.table[i-1] {
			return nil, fmt.Errorf("replica table is not ascending at %d", i)
		}
	}
	for _, r := range s.table {
		rs := d.replicaState(r)
		rs.next = dec.uvarint()
		if dec.err == nil && (rs.next == 0 || rs.next > maxCounter) {
			return nil, fmt.Errorf("replica %d has %d operations, outside 1 to %d", r, rs.next, uint64(maxCounter))
		}
	}

	if err := s.readHistory(); err != nil {
		return nil, err
	}
	for range dec.count(3) {
		r := s.replica()
		start := dec.uvarint()
		n := dec.uvarint()
		if dec.err != nil {
			break
		}
		if n == 0 || start > d.applied(r) || n > d.applied(r)-start {
			return nil, fmt.Errorf("uncommitted span %d+%d of replica %d is outside its %d operations", start, n, r, d.applied(r))
		}
		d.uncommitted = append(d.uncommitted, span{replica: r, start: start, end: start + n})
	}

	if err := s.readContainers(); err != nil {
		return nil, err
	}
	if err := s.indexItems(); err != nil {
		return nil, err
	}
	for _, r := range s.table {
		if err := s.readDeletes(d.replicas[r]); err != nil {
			return nil, fmt.Errorf("deletes of replica %d: %w", r, err)
		}
	}
	for _, r := range s.table {
		if err := s.readAtoms(d.replicas[r]); err != nil {
			return nil, fmt.Errorf("map and counter operations of replica %d: %w", r, err)
		}
	}
	for range dec.count(1) {
		raw := dec.bytes()
		if dec.err != nil {
			break
		}
		u, err := decodeUpdate(raw)
		if err != nil {
			return nil, fmt.Errorf("held-back update: %w", err)
		}
		d.heldBack = append(d.heldBack, &heldUpdate{raw: slices.Clone(raw), upd: u})
	}
	if err := dec.finish(); err != nil {
		return nil, err
	}

	if err := s.checkConsistency(); err != nil {
		return nil, err
	}
	if err := s.replayHistory(); err != nil {
		return nil, err
	}
	for _, c := range d.nested {
		if c.parent == nil {
			return nil, fmt.Errorf("nested %s has no operation that creates it", c.describe())
		}
	}
	return d, nil
}

func (s *stateDecoder) readHistory() error {
	dec := &s.dec
	d := s.doc
	seen := make(map[ReplicaID]uint64)
	count := dec.count(2)
	d.history = make([]span, 0, count)
	for range count {
		r := s.replica()
		n := dec.uvarint()
		if dec.err != nil {
			break
		}
		start := seen[r]
		if n == 0 || n > d.applied(r)-start {
			return fmt.Errorf("history span of %d operations of replica %d goes past its %d operations", n, r, d.applied(r))
		}
		seen[r] = start + n
		d.history = append(d.history, span{replica: r, start: start, end: start + n})
	}
	if dec.err != nil {
		return dec.err
	}
	for r, rs := range d.replicas {
		if seen[r] != rs.next {
			return fmt.Errorf("history has %d operations of replica %d, which has %d", seen[r], r, rs.next)
		}
	}
	return nil
}

// readContainers reads the container table with the items of every text
// and list, and links the nested containers that list elements hold.
func (s *stateDecoder) readContainers() error {
	dec := &s.dec
	d := s.doc
	n := dec.count(2)
	var prev *container
	for i := range n {
		typ := dec.byte()
		k := Kind(typ &^ flagNested)
		if dec.err != nil {
			return dec.err
		}
		if !k.valid() {
			return fmt.Errorf("container %d has unknown type %d", i, typ)
		}

		var c *container
		if typ&flagNested == 0 {
			name := dec.bytes()
			if dec.err != nil {
				return dec.err
			}
			if !utf8.Valid(name) {
				return fmt.Errorf("container %d: name %q: %w", i, name, ErrInvalidUTF8)
			}
			if prev != nil && (!prev.isRoot() || cmp.Or(cmp.Compare(prev.name, string(name)), cmp.Compare(prev.kind, k)) >= 0) {
				return fmt.Errorf("root %s %q is out of order", k, name)
			}
			c = d.ensureRoot(string(name), k)
			c.touched = true
		} else {
			id := s.id()
			if dec.err != nil {
				return dec.err
			}
			if id.counter >= d.applied(id.replica) {
				return fmt.Errorf("nested %s %d:%d is created by an operation the document lacks", k, id.replica, id.counter)
			}
			if prev != nil && !prev.isRoot() && compareIDs(prev.id, id) >= 0 {
				return fmt.Errorf("nested %s %d:%d is out of order", k, id.replica, id.counter)
			}
			c = d.newContainer(k)
			c.id = id
			d.nested[id] = c
		}
		prev = c
		s.containers = append(s.containers, c)

		if k == KindText || k == KindList {
			if err := s.readItems(c); err != nil {
				return fmt.Errorf("%s: %w", c.describe(), err)
			}
		}
	}
	if dec.err != nil {
		return dec.err
	}
	for key := range d.roots {
		d.updateBlocked(key.name)
	}

	// The links come in document order; the replicas' lists of element
	// containers are sorted by counter.
	slices.SortFunc(s.links, func(a, b elementLink) int { return compareIDs(a.id(), b.id()) })
	for _, l := range s.links {
		id := l.id()
		c := d.nested[id]
		if c == nil || c.kind != l.kind {
			return fmt.Errorf("list element %d:%d holds a %s that is missing from the container table", id.replica, id.counter, l.kind)
		}
		c.parent = l.it.owner
		if !l.it.deleted {
			l.it.values[l.off] = c
		}
		rs := d.replicas[id.replica]
		rs.elements = append(rs.elements, c)
	}
	return nil
}

// readItems reads the item columns of a text or list and builds its tree.
func (s *stateDecoder) readItems(t *container) error {
	dec := &s.dec
	n := dec.count(1)
	ncols := 6
	if t.kind == KindList {
		ncols = 7
	}
	cols := make([]decoder, ncols)
	for i := range cols {
		cols[i] = decoder{buf: dec.bytes()}
	}
	if dec.err != nil {
		return dec.err
	}
	flags, replicas, counters, lengths, origins, contentCol := &cols[0], &cols[1], &cols[2], &cols[3], &cols[4], &cols[5]
	if len(flags.buf) != n {
		return fmt.Errorf("%d item flags for %d items", len(flags.buf), n)
	}
	if t.kind == KindList && len(contentCol.buf) > 0 {
		return fmt.Errorf("a list has text content")
	}
	if !utf8.Valid(contentCol.buf) {
		return fmt.Errorf("content: %w", ErrInvalidUTF8)
	}
	content := []rune(string(contentCol.buf))

	items := make([]*item, n)
	slab := make([]item, n) // one allocation for all items
	rightNextAt := make([]bool, n)
	lastEnd := make(map[ReplicaID]uint64)
	var replica ReplicaID
	var total uint64
	used := 0
	explicit := func(self opID) opID {
		i := origins.uvarint()
		delta := origins.varint()
		if origins.err == nil && i >= uint64(len(s.table)) {
			origins.fail(fmt.Errorf("origin replica index %d outside a table of %d", i, len(s.table)))
		}
		if origins.err != nil {
			return noID
		}
		return opID{replica: s.table[i], counter: self.counter + uint64(delta)}
	}
	for i := range items {
		f := flags.byte()
		if f&flagSameReplica == 0 || i == 0 {
			ri := replicas.uvarint()
			if replicas.err == nil && ri >= uint64(len(s.table)) {
				return fmt.Errorf("item %d: replica index %d outside a table of %d", i, ri, len(s.table))
			}
			if replicas.err != nil {
				return fmt.Errorf("item %d: replica: %w", i, replicas.err)
			}
			replica = s.table[ri]
		}
		counter := lastEnd[replica] + uint64(counters.varint())
		length := lengths.uvarint()
		if counters.err != nil || lengths.err != nil {
			return fmt.Errorf("item %d: %w", i, errTruncated)
		}
		if length == 0 || counter >= maxCounter || length > maxCounter || counter+length > s.doc.applied(replica) {
			return fmt.Errorf("item %d: counters %d+%d of replica %d are outside its %d operations", i, counter, length, replica, s.doc.applied(replica))
		}
		total += length
		if total > maxTextLength {
			return fmt.Errorf("more than %d elements", uint64(maxTextLength))
		}
		it := &slab[i]
		*it = item{
			id:      opID{replica: replica, counter: counter},
			length:  int(length),
			deleted: f&flagDeleted != 0,
			owner:   t,
		}
		lastEnd[replica] = it.end()

		switch (f >> leftShift) & 3 {
		case leftNone:
			it.left = noID
		case leftPrevious:
			if i == 0 {
				return fmt.Errorf("item 0 has the previous item as left origin")
			}
			it.left = items[i-1].lastID()
		case leftPredecessor:
			if counter == 0 {
				return fmt.Errorf("item %d has no predecessor", i)
			}
			it.left = opID{replica: replica, counter: counter - 1}
		case leftExplicit:
			it.left = explicit(it.id)
		}
		switch (f >> rightShift) & 3 {
		case rightNone:
			it.right = noID
		case rightNext:
			if i+1 == n {
				return fmt.Errorf("last item has the next item as right origin")
			}
			rightNextAt[i] = true
		case rightSame:
			if i == 0 {
				return fmt.Errorf("item 0 has the previous item's right origin")
			}
			it.right = items[i-1].right
		case rightExplicit:
			it.right = explicit(it.id)
		}
		if origins.err != nil {
			return fmt.Errorf("item %d: origin: %w", i, origins.err)
		}
		if f&^(flagDeleted|flagSameReplica|3<<leftShift|3<<rightShift) != 0 {
			return fmt.Errorf("item %d has unknown flags %#x", i, f)
		}

		switch {
		case t.kind == KindList:
			if err := s.readValues(&cols[6], it); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		case !it.deleted:
			if len(content)-used < it.length {
				return fmt.Errorf("item %d: content ends early", i)
			}
			it.content = content[used : used+it.length : used+it.length]
			used += it.length
		}
		items[i] = it
	}
	for i, next := range rightNextAt {
		if next {
			items[i].right = items[i+1].id
		}
	}
	for i := range cols {
		if i == 5 { // content was read in one piece
			continue
		}
		if err := cols[i].finish(); err != nil {
			return fmt.Errorf("item columns: %w", err)
		}
	}
	if used != len(content) {
		return fmt.Errorf("content has %d code points, items hold %d", len(content), used)
	}
	t.tree = buildTree(items)
	return nil
}

// readValues reads the values of the elements of a list item: for a live
// item plain values and nested containers, for a deleted one the nested
// containers only.
func (s *stateDecoder) readValues(col *decoder, it *item) error {
	if it.deleted {
		for _, m := range col.markers(uint64(it.length)) {
			s.links = append(s.links, elementLink{it: it, off: int(m.off), kind: m.kind})
		}
		return col.err
	}

	if it.length > col.remaining() {
		return errTruncated
	}
	it.values = make([]any, it.length)
	for k := range it.values {
		v := col.value(0)
		if col.err != nil {
			return fmt.Errorf("value: %w", col.err)
		}
		switch m := v.(type) {
		case kindMarker:
			s.links = append(s.links, elementLink{it: it, off: k, kind: Kind(m)})
		case droppedValue:
			return fmt.Errorf("live element %d has no value", k)
		}
		it.values[k] = v
	}
	return nil
}

// indexItems builds the id index of every replica and checks that no two
// items share a counter.
func (s *stateDecoder) indexItems() error {
	counts := make(map[ReplicaID]int)
	for _, c := range s.containers {
		c.tree.each(func(it *item) bool {
			counts[it.id.replica]++
			return true
		})
	}
	byReplica := make(map[ReplicaID][]*item, len(counts))
	for r, n := range counts {
		byReplica[r] = make([]*item, 0, n)
	}
	for _, c := range s.containers {
		c.tree.each(func(it *item) bool {
			byReplica[it.id.replica] = append(byReplica[it.id.replica], it)
			return true
		})
	}
	for r, items := range byReplica {
		rs := s.doc.replicas[r]
		items = sortByCounter(items, rs.next)
		for i := 1; i < len(items); i++ {
			if items[i-1].end() > items[i].id.counter {
				return fmt.Errorf("items of replica %d overlap at counter %d", r, items[i].id.counter)
			}
		}
		rs.items.build(items)
	}
	return nil
}

// sortByCounter sorts items of one replica by counter, all below limit,
// with a radix sort: loading sorts every item of a document, and the
// counters are dense.
func sortByCounter(items []*item, limit uint64) []*item {
	if len(items) < 256 {
		slices.SortFunc(items, func(a, b *item) int { return cmp.Compare(a.id.counter, b.id.counter) })
		return items
	}
	const bits = 11
	tmp := make([]*item, len(items))
	for shift := uint(0); shift < 64 && limit>>shift > 0; shift += bits {
		var start [1<<bits + 1]int
		for _, it := range items {
			start[(it.id.counter>>shift)&(1<<bits-1)+1]++
		}
		for i := 1; i < len(start); i++ {
			start[i] += start[i-1]
		}
		for _, it := range items {
			digit := (it.id.counter >> shift) & (1<<bits - 1)
			tmp[start[digit]] = it
			start[digit]++
		}
		items, tmp = tmp, items
	}
	return items
}

func (s *stateDecoder) readDeletes(rs *replicaState) error {
	dec := &s.dec
	var end, target uint64
	n := dec.count(4)
	rs.deletes = make([]deleteRun, 0, n)
	var targets *replicaState
	for range n {
		gap := dec.uvarint()
		lengthAndDir := dec.uvarint()
		r := s.replica()
		delta := dec.varint()
		if dec.err != nil {
			return dec.err
		}
		run := deleteRun{
			counter:  end + gap,
			length:   lengthAndDir >> 1,
			target:   opID{replica: r, counter: target + uint64(delta)},
			backward: lengthAndDir&1 != 0,
		}
		if gap > maxCounter || run.length == 0 || run.length > maxCounter || run.end() > rs.next {
			return fmt.Errorf("run %d+%d is outside the replica's %d operations", run.counter, run.length, rs.next)
		}
		lo, hi := run.target.counter, run.target.counter+run.length
		if run.backward {
			if run.target.counter+1 < run.length {
				return fmt.Errorf("backward run of %d from %d goes below zero", run.length, run.target.counter)
			}
			lo, hi = run.target.counter+1-run.length, run.target.counter+1
		}
		if run.target.counter >= maxCounter || hi > s.doc.applied(r) {
			return fmt.Errorf("run targets %d to %d of replica %d, which has %d operations", lo, hi, r, s.doc.applied(r))
		}
		// Every target must be a tombstone: the delete was applied.
		if targets == nil || targets.id != r {
			targets = s.doc.replicas[r]
		}
		for c := lo; c < hi; {
			it, _ := targets.items.find(c)
			if it == nil || !it.deleted {
				return fmt.Errorf("run targets %d:%d, which is not a deleted element", r, c)
			}
			c = it.end()
		}
		rs.deletes = append(rs.deletes, run)
		end, target = run.end(), run.target.counter
	}
	return dec.err
}

// readAtoms reads the map and counter operations of one replica. Their
// effect on maps and counters is replayed later, in history order.
func (s *stateDecoder) readAtoms(rs *replicaState) error {
	dec := &s.dec
	var next uint64
	n := dec.count(3)
	rs.atoms = make([]*atom, 0, n)
	for range n {
		gap := dec.uvarint()
		a := &atom{kind: opKind(dec.byte())}
		ci := dec.uvarint()
		if dec.err != nil {
			return dec.err
		}
		if gap >= maxCounter || next+gap >= rs.next {
			return fmt.Errorf("operation at gap %d after %d is outside the replica's %d operations", gap, next, rs.next)
		}
		a.id = opID{replica: rs.id, counter: next + gap}
		next = a.id.counter + 1
		if ci >= uint64(len(s.containers)) {
			return fmt.Errorf("operation %d: container index %d outside a table of %d", a.id.counter, ci, len(s.containers))
		}
		a.owner = s.containers[ci]
		kinds, known := opContainerKinds[a.kind]
		if !known || a.kind < opMapSet || !slices.Contains(kinds, a.owner.kind) {
			return fmt.Errorf("operation %d of kind %d does not apply to a %s", a.id.counter, a.kind, a.owner.kind)
		}

		if a.kind == opCounterAdd {
			a.amount = dec.varint()
		} else if err := s.readMapOp(a); err != nil {
			return fmt.Errorf("operation %d: %w", a.id.counter, err)
		}
		if dec.err != nil {
			return dec.err
		}
		rs.atoms = append(rs.atoms, a)
	}
	return dec.err
}

func (s *stateDecoder) readMapOp(a *atom) error {
	dec := &s.dec
	key := dec.bytes()
	a.lamport = dec.uvarint()
	n := dec.count(2)
	if dec.err != nil {
		return dec.err
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
		a.preds[k] = s.id()
		if dec.err != nil {
			return dec.err
		}
		if k > 0 && compareIDs(a.preds[k-1], a.preds[k]) >= 0 {
			return fmt.Errorf("replaced sets are not in ascending order")
		}
	}
	if a.kind == opMapSet {
		a.value = dec.value(0)
	}
	return dec.err
}

// checkConsistency checks what the sections cannot check one by one.
// Every counter of every replica must be exactly one insert, delete, or
// map or counter operation. Every origin must be an element of the same
// text or list, and a left origin must come before its item.
func (s *stateDecoder) checkConsistency() error {
	for _, r := range s.table {
		if err := s.checkCounters(s.doc.replicas[r]); err != nil {
			return fmt.Errorf("replica %d: %w", r, err)
		}
	}
	for _, c := range s.containers {
		if c.kind == KindText || c.kind == KindList {
			if err := s.checkOrigins(c); err != nil {
				return fmt.Errorf("%s: %w", c.describe(), err)
			}
		}
	}
	return nil
}

// checkCounters walks the inserts, deletes and atoms of rs in counter
// order and checks that they cover [0, next) without gaps or overlaps.
func (s *stateDecoder) checkCounters(rs *replicaState) error {
	var c uint64
	di, ai := 0, 0
	skipOthers := func() {
		for {
			switch {
			case di < len(rs.deletes) && rs.deletes[di].counter == c:
				c = rs.deletes[di].end()
				di++
			case ai < len(rs.atoms) && rs.atoms[ai].id.counter == c:
				c++
				ai++
			default:
				return
			}
		}
	}
	var err error
	rs.items.each(func(it *item) {
		if err != nil {
			return
		}
		skipOthers()
		if it.id.counter != c {
			err = fmt.Errorf("counter %d is not exactly one operation", c)
		}
		c = it.end()
	})
	if err != nil {
		return err
	}
	skipOthers()
	if c != rs.next || di != len(rs.deletes) || ai != len(rs.atoms) {
		return fmt.Errorf("its operations account for %d of its %d counters", c, rs.next)
	}
	return nil
}

// checkOrigins checks that every origin of every item of c is an element
// of c, and that the left one comes before the item, as integration
// always places it. A right origin after the item is not required: Apply
// cannot check that for an origin inserted by the same update, and a
// document that accepted such an update must still load.
func (s *stateDecoder) checkOrigins(c *container) error {
	// Document positions, counted from 1, tell whether an origin comes
	// before an item; the scratch field keeps that check free of a map.
	pos := uint32(0)
	for n := c.tree.first; n != nil; n = n.next {
		for _, it := range n.items {
			pos++
			it.scratch = pos
		}
	}
	defer func() {
		for n := c.tree.first; n != nil; n = n.next {
			for _, it := range n.items {
				it.scratch = 0
			}
		}
	}()

	var prev *item
	for n := c.tree.first; n != nil; n = n.next {
		for i, it := range n.items {
			// The origins that most items have, their neighbours, pass
			// without a search.
			if !it.left.isNone() && (prev == nil || it.left != prev.lastID()) {
				o := s.findItem(it.left)
				switch {
				case o == nil || o.owner != c:
					return fmt.Errorf("left origin %d:%d of item %d:%d is not an element of the container",
						it.left.replica, it.left.counter, it.id.replica, it.id.counter)
				case o.scratch >= it.scratch:
					return fmt.Errorf("left origin %d:%d of item %d:%d does not come before it",
						it.left.replica, it.left.counter, it.id.replica, it.id.counter)
				}
			}
			if next := nextAt(n, i); !it.right.isNone() && (next == nil || it.right != next.id) {
				o := s.findItem(it.right)
				switch {
				case o == nil || o.owner != c:
					return fmt.Errorf("right origin %d:%d of item %d:%d is not an element of the container",
						it.right.replica, it.right.counter, it.id.replica, it.id.counter)
				case o == it:
					return fmt.Errorf("right origin %d:%d of item %d:%d lies inside the item",
						it.right.replica, it.right.counter, it.id.replica, it.id.counter)
				}
			}
			prev = it
		}
	}
	return nil
}

// findItem returns the item that holds id, or nil.
func (s *stateDecoder) findItem(id opID) *item {
	rs := s.doc.replicas[id.replica]
	if rs == nil {
		return nil
	}
	it, _ := rs.items.find(id.counter)
	return it
}

// replayHistory walks the history in the order it was applied. It checks
// that every operation comes after everything it refers to: origins,
// delete targets, replaced sets and the creator of its container.
// UpdatesSince sends operations in history order, so a history that broke
// this rule would make updates that other replicas reject. On the way it
// applies the map and counter operations, which rebuilds map keys,
// counter sums and the links of nested containers that maps hold.
func (s *stateDecoder) replayHistory() error {
	d := s.doc
	// Each replica's operations come in counter order, and checkCounters
	// has made sure that its items, deletes and atoms cover every
	// counter once, so one cursor per replica walks them without search.
	cursors := make(map[ReplicaID]*opCursor, len(d.replicas))
	for r, rs := range d.replicas {
		cursors[r] = &opCursor{rs: rs}
	}
	for _, sp := range d.history {
		cur := cursors[sp.replica]
		// precedes reports whether id was applied before counter c of
		// the span's replica.
		precedes := func(id opID, c uint64) bool {
			switch {
			case id.isNone():
				return true
			case id.replica == sp.replica:
				return id.counter < c
			}
			return id.counter < cursors[id.replica].seen
		}
		for c := sp.start; c < sp.end; {
			cur.seen = c
			switch it, run, a := cur.at(c); {
			case run != nil:
				end := min(sp.end, run.end())
				if !precedes(run.targetAt(c), c) || !precedes(run.targetAt(end-1), c) {
					return fmt.Errorf("delete %d:%d comes before an element it deletes", sp.replica, c)
				}
				cur.passed(end)
				c = end
			case it != nil:
				if c == it.id.counter && (!precedes(it.left, c) || !precedes(it.right, c)) {
					return fmt.Errorf("insert %d:%d comes before one of its origins", sp.replica, c)
				}
				if !precedes(it.owner.id, c) {
					return fmt.Errorf("insert %d:%d comes before the creation of its container", sp.replica, c)
				}
				end := min(sp.end, it.end())
				cur.passed(end)
				c = end
			case a != nil:
				if !precedes(a.owner.id, c) {
					return fmt.Errorf("operation %d:%d comes before the creation of its container", sp.replica, c)
				}
				for _, p := range a.preds {
					if !precedes(p, c) {
						return fmt.Errorf("map operation %d:%d comes before a set it replaces", sp.replica, c)
					}
				}
				if err := s.replayAtom(a); err != nil {
					return fmt.Errorf("operation %d:%d: %w", sp.replica, c, err)
				}
				cur.passed(c + 1)
				c++
			default:
				return fmt.Errorf("counter %d:%d is not an operation", sp.replica, c)
			}
		}
		cur.seen = sp.end
	}

	for _, c := range s.containers {
		for key, mk := range c.keys {
			for _, a := range mk.live {
				if _, ok := a.value.(droppedValue); ok {
					return fmt.Errorf("key %q of %s shows a set whose value was dropped", key, c.describe())
				}
			}
		}
	}
	return nil
}

// replayAtom applies one loaded map or counter operation after checking
// what Apply checks for a remote one.
func (s *stateDecoder) replayAtom(a *atom) error {
	d := s.doc
	if a.kind == opCounterAdd {
		d.applyAtomEffect(a)
		return nil
	}

	for _, p := range a.preds {
		pa := d.replicas[p.replica].findAtom(p.counter)
		if pa == nil || pa.kind != opMapSet || pa.owner != a.owner || pa.key != a.key || pa.lamport >= a.lamport {
			return fmt.Errorf("replaces %d:%d, which is not an earlier set of key %q", p.replica, p.counter, a.key)
		}
	}
	if m, ok := a.value.(kindMarker); ok {
		own := d.nested[a.id]
		merged := a.owner.keys[a.key].findCreated(Kind(m), a.lamport)
		switch {
		case own != nil && (own.kind != Kind(m) || merged != nil):
			return fmt.Errorf("creates a %s that the container table does not match", Kind(m))
		case own == nil && merged == nil:
			return fmt.Errorf("creates a %s that the container table lacks", Kind(m))
		}
	}
	d.applyAtomEffect(a)
	return nil
}
