package crdt

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"
)

// Saved state format, version 1:
//
//	byte    tagState
//	uvarint length of the body before compression
//	body    compressed with DEFLATE (RFC 1951):
//	  replicas  count, then ids as 8 bytes little-endian, ascending
//	  applied   per replica: operations applied
//	  history   count, then (replica index, length) spans in the order
//	            applied. Each replica's spans continue where its last ended.
//	  pending   count, then (replica index, start, length) spans of local
//	            operations that Commit has not returned yet
//	  texts     count, then per text in name order: name, item count, and
//	            six length-prefixed columns over the items in document
//	            order (flags, replicas, counters, lengths, origins, content)
//	  deletes   per replica: count, then delete runs
//	  held      count, then each held-back update, length-prefixed
//
// The items are stored in document order, so loading needs no merging,
// and most origins are implied by an item's neighbours (flag bits) instead
// of written out. Deleted code points are not stored at all.
const tagState = 0x02

// Item flag bits in the saved state.
const (
	flagDeleted     = 1 << 0
	flagSameReplica = 1 << 1 // same replica as the previous item

	leftShift       = 2 // left origin mode, 2 bits
	leftNone        = 0
	leftPrevious    = 1 // last code point of the previous item
	leftPredecessor = 2 // the code point before this item's first, same replica
	leftExplicit    = 3

	rightShift    = 4 // right origin mode, 2 bits
	rightNone     = 0
	rightNext     = 1 // first code point of the next item
	rightExplicit = 2
	rightSame     = 3 // the previous item's right origin
)

// maxStateBody bounds the size of a saved state after decompression.
const maxStateBody = 1 << 30

// Save returns the whole document: every operation, the local edits not
// yet committed, and the held-back updates. Load restores it.
func (d *Doc) Save() ([]byte, error) {
	d.mu.Lock()
	body := d.encodeState()
	d.mu.Unlock()

	var out bytes.Buffer
	var e encoder
	e.byte(tagState)
	e.uvarint(uint64(len(body)))
	out.Write(e.buf)
	w, err := flate.NewWriter(&out, flate.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("save document: %w", err)
	}
	if _, err := w.Write(body); err != nil {
		return nil, fmt.Errorf("save document: compress: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("save document: compress: %w", err)
	}
	return out.Bytes(), nil
}

func (d *Doc) encodeState() []byte {
	table := sortedReplicas(d.replicas)
	index := make(map[ReplicaID]uint64, len(table))
	for i, r := range table {
		index[r] = uint64(i)
	}

	var e encoder
	e.uvarint(uint64(len(table)))
	for _, r := range table {
		e.replicaID(uint64(r))
	}
	for _, r := range table {
		e.uvarint(d.replicas[r].next)
	}

	e.uvarint(uint64(len(d.history)))
	for _, s := range d.history {
		e.uvarint(index[s.replica])
		e.uvarint(s.end - s.start)
	}
	e.uvarint(uint64(len(d.uncommitted)))
	for _, s := range d.uncommitted {
		e.uvarint(index[s.replica])
		e.uvarint(s.start)
		e.uvarint(s.end - s.start)
	}

	names := make([]string, 0, len(d.texts))
	for name := range d.texts {
		names = append(names, name)
	}
	slices.Sort(names)
	e.uvarint(uint64(len(names)))
	for _, name := range names {
		e.string(name)
		encodeItems(&e, d.texts[name], index)
	}

	for _, r := range table {
		runs := d.replicas[r].deletes
		e.uvarint(uint64(len(runs)))
		var end, target uint64
		for _, run := range runs {
			e.uvarint(run.counter - end)
			e.uvarint(run.length<<1 | uint64(boolByte(run.backward)))
			e.uvarint(index[run.target.replica])
			e.varint(int64(run.target.counter - target))
			end, target = run.end(), run.target.counter
		}
	}

	e.uvarint(uint64(len(d.heldBack)))
	for _, h := range d.heldBack {
		e.bytes(h.raw)
	}
	return e.buf
}

// encodeItems writes the items of t as columns, so that similar values
// sit together for the compressor.
func encodeItems(e *encoder, t *Text, index map[ReplicaID]uint64) {
	var items []*item
	t.tree.each(func(it *item) bool {
		items = append(items, it)
		return true
	})

	var flags, replicas, counters, lengths, origins, content encoder
	lastEnd := make(map[ReplicaID]uint64)
	explicit := func(id opID, self opID) {
		origins.uvarint(index[id.replica])
		origins.varint(int64(id.counter - self.counter))
	}
	for i, it := range items {
		var f byte
		if it.deleted {
			f |= flagDeleted
		}
		if i > 0 && items[i-1].id.replica == it.id.replica {
			f |= flagSameReplica
		} else {
			replicas.uvarint(index[it.id.replica])
		}
		counters.varint(int64(it.id.counter - lastEnd[it.id.replica]))
		lastEnd[it.id.replica] = it.end()
		lengths.uvarint(uint64(it.length))

		switch {
		case it.left.isNone():
			f |= leftNone << leftShift
		case i > 0 && it.left == items[i-1].lastID():
			f |= leftPrevious << leftShift
		case it.left.replica == it.id.replica && it.left.counter+1 == it.id.counter:
			f |= leftPredecessor << leftShift
		default:
			f |= leftExplicit << leftShift
			explicit(it.left, it.id)
		}
		switch {
		case it.right.isNone():
			f |= rightNone << rightShift
		case i+1 < len(items) && it.right == items[i+1].id:
			f |= rightNext << rightShift
		case i > 0 && it.right == items[i-1].right:
			f |= rightSame << rightShift
		default:
			f |= rightExplicit << rightShift
			explicit(it.right, it.id)
		}
		flags.byte(f)
		if !it.deleted {
			content.runes(it.content)
		}
	}

	e.uvarint(uint64(len(items)))
	for _, col := range []*encoder{&flags, &replicas, &counters, &lengths, &origins, &content} {
		e.bytes(col.buf)
	}
}

// Load restores a document saved by Save. Local edits made after loading
// belong to replica. It may differ from the replica that saved, but then
// it must be an id that no other live replica uses. Edits that the saved
// document had not committed are returned by the next Commit either way.
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

func decompressState(data []byte) ([]byte, error) {
	dec := decoder{buf: data}
	if tag := dec.byte(); dec.err == nil && tag != tagState {
		return nil, fmt.Errorf("first byte %#x is not the saved state tag %#x", tag, tagState)
	}
	size := dec.uvarint()
	if dec.err != nil {
		return nil, dec.err
	}
	if size > maxStateBody {
		return nil, fmt.Errorf("body of %d bytes exceeds the maximum of %d", size, maxStateBody)
	}
	r := flate.NewReader(bytes.NewReader(data[dec.pos:]))
	defer r.Close()
	body, err := io.ReadAll(io.LimitReader(r, int64(size)+1))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	if uint64(len(body)) != size {
		return nil, fmt.Errorf("decompressed body has %d bytes, but the header gives %d", len(body), size)
	}
	return body, nil
}

// stateDecoder holds what decodeState has read so far.
type stateDecoder struct {
	dec   decoder
	table []ReplicaID
	doc   *Doc
}

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

func decodeState(body []byte) (*Doc, error) {
	s := &stateDecoder{dec: decoder{buf: body}, doc: &Doc{
		replicas: make(map[ReplicaID]*replicaState),
		texts:    make(map[string]*Text),
	}}
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
		if rs.next > maxCounter {
			return nil, fmt.Errorf("replica %d has %d operations, above the maximum %d", r, rs.next, uint64(maxCounter))
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

	nTexts := dec.count(2)
	var prevName string
	for i := range nTexts {
		name := dec.bytes()
		if dec.err != nil {
			break
		}
		if !utf8.Valid(name) {
			return nil, fmt.Errorf("text name %q: %w", name, ErrInvalidUTF8)
		}
		if i > 0 && string(name) <= prevName {
			return nil, fmt.Errorf("text %q is out of name order", name)
		}
		prevName = string(name)
		if err := s.readItems(d.text(string(name))); err != nil {
			return nil, fmt.Errorf("text %q: %w", name, err)
		}
	}
	if dec.err != nil {
		return nil, dec.err
	}
	if err := s.indexItems(); err != nil {
		return nil, err
	}

	for _, r := range s.table {
		if err := s.readDeletes(d.replicas[r]); err != nil {
			return nil, fmt.Errorf("deletes of replica %d: %w", r, err)
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
	if err := s.checkCausality(); err != nil {
		return nil, err
	}
	return d, nil
}

func (s *stateDecoder) readHistory() error {
	dec := &s.dec
	d := s.doc
	seen := make(map[ReplicaID]uint64)
	for range dec.count(2) {
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

// readItems reads the item columns of t and builds its tree.
func (s *stateDecoder) readItems(t *Text) error {
	dec := &s.dec
	n := dec.count(1)
	var cols [6]decoder
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
	if !utf8.Valid(contentCol.buf) {
		return fmt.Errorf("content: %w", ErrInvalidUTF8)
	}
	content := []rune(string(contentCol.buf))

	items := make([]*item, n)
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
			return fmt.Errorf("more than %d code points", uint64(maxTextLength))
		}
		it := &item{
			id:      opID{replica: replica, counter: counter},
			length:  int(length),
			deleted: f&flagDeleted != 0,
			text:    t,
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

		if !it.deleted {
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
	for _, col := range cols[:5] {
		if err := col.finish(); err != nil {
			return fmt.Errorf("item columns: %w", err)
		}
	}
	if used != len(content) {
		return fmt.Errorf("content has %d code points, items hold %d", len(content), used)
	}
	t.tree = buildTree(items)
	return nil
}

// indexItems adds every item to the id index of its replica and checks
// that no two items share a counter.
func (s *stateDecoder) indexItems() error {
	byReplica := make(map[ReplicaID][]*item)
	for _, t := range s.doc.texts {
		t.tree.each(func(it *item) bool {
			byReplica[it.id.replica] = append(byReplica[it.id.replica], it)
			return true
		})
	}
	for r, items := range byReplica {
		slices.SortFunc(items, func(a, b *item) int { return compareIDs(a.id, b.id) })
		rs := s.doc.replicas[r]
		for i, it := range items {
			if i > 0 && items[i-1].end() > it.id.counter {
				return fmt.Errorf("items of replica %d overlap at counter %d", r, it.id.counter)
			}
			rs.items.add(it)
		}
	}
	return nil
}

func (s *stateDecoder) readDeletes(rs *replicaState) error {
	dec := &s.dec
	var end, target uint64
	for range dec.count(4) {
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
		for c := lo; c < hi; {
			it, _ := s.doc.replicas[r].items.find(c)
			if it == nil || !it.deleted {
				return fmt.Errorf("run targets %d:%d, which is not a deleted code point", r, c)
			}
			c = it.end()
		}
		rs.deletes = append(rs.deletes, run)
		end, target = run.end(), run.target.counter
	}
	return dec.err
}

// checkConsistency checks what the columns cannot check one by one: every
// counter of every replica is exactly one insert or delete, and every
// origin is a code point of the same text.
func (s *stateDecoder) checkConsistency() error {
	for _, r := range s.table {
		rs := s.doc.replicas[r]
		var c uint64
		di := 0
		var err error
		rs.items.each(func(it *item) {
			for err == nil && di < len(rs.deletes) && rs.deletes[di].counter == c {
				c = rs.deletes[di].end()
				di++
			}
			if err == nil && it.id.counter != c {
				err = fmt.Errorf("replica %d: counter %d is neither an insert nor a delete", r, c)
			}
			c = it.end()
		})
		for err == nil && di < len(rs.deletes) && rs.deletes[di].counter == c {
			c = rs.deletes[di].end()
			di++
		}
		if err != nil {
			return err
		}
		if c != rs.next || di != len(rs.deletes) {
			return fmt.Errorf("replica %d: inserts and deletes account for %d of its %d operations", r, c, rs.next)
		}
	}

	for _, t := range s.doc.texts {
		if err := s.checkOrigins(t); err != nil {
			return fmt.Errorf("text %q: %w", t.name, err)
		}
	}
	return nil
}

// checkOrigins checks that every origin of every item of t is a code point
// of t, and that the left one comes before the item, as integration always
// places it. A right origin after the item is not required: Apply cannot
// check that for an origin inserted by the same update, and a document
// that accepted such an update must still load.
func (s *stateDecoder) checkOrigins(t *Text) error {
	visited := make(map[*item]bool)
	var err error
	t.tree.each(func(it *item) bool {
		for side, ref := range []opID{it.left, it.right} {
			if ref.isNone() {
				continue
			}
			var o *item
			if rs := s.doc.replicas[ref.replica]; rs != nil {
				o, _ = rs.items.find(ref.counter)
			}
			switch {
			case o == nil || o.text != t:
				err = fmt.Errorf("origin %d:%d of item %d:%d is not a code point of the text",
					ref.replica, ref.counter, it.id.replica, it.id.counter)
			case side == 0 && !visited[o]:
				err = fmt.Errorf("left origin %d:%d of item %d:%d does not come before it",
					ref.replica, ref.counter, it.id.replica, it.id.counter)
			case side == 1 && o == it:
				err = fmt.Errorf("right origin %d:%d of item %d:%d lies inside the item",
					ref.replica, ref.counter, it.id.replica, it.id.counter)
			}
			if err != nil {
				return false
			}
		}
		visited[it] = true
		return true
	})
	return err
}

// checkCausality checks that the history lists every operation after
// everything it refers to: origins and delete targets. UpdatesSince sends
// operations in history order, so a history that broke this rule would
// make updates that other replicas reject.
func (s *stateDecoder) checkCausality() error {
	d := s.doc
	seen := make(map[ReplicaID]uint64)
	precedes := func(id opID) bool { return id.isNone() || id.counter < seen[id.replica] }
	for _, sp := range d.history {
		rs := d.replicas[sp.replica]
		for c := sp.start; c < sp.end; {
			seen[sp.replica] = c
			if i := rs.findDelete(c); i >= 0 {
				run := rs.deletes[i]
				end := min(sp.end, run.end())
				if !precedes(run.targetAt(c)) || !precedes(run.targetAt(end-1)) {
					return fmt.Errorf("delete %d:%d comes before a code point it deletes", sp.replica, c)
				}
				c = end
				continue
			}
			it, off := rs.items.find(c)
			if off == 0 && (!precedes(it.left) || !precedes(it.right)) {
				return fmt.Errorf("insert %d:%d comes before one of its origins", sp.replica, c)
			}
			c = min(sp.end, it.end())
		}
		seen[sp.replica] = sp.end
	}
	return nil
}
