package crdt

import (
	"bytes"
	"cmp"
	"compress/flate"
	"fmt"
	"slices"
	"strings"
)

// Saved state format, version 2:
//
//	byte    tagState
//	uvarint length of the body before compression
//	body    compressed with DEFLATE (RFC 1951):
//	  replicas   count, then ids as 8 bytes little-endian, ascending
//	  applied    per replica: operations applied
//	  history    count, then (replica index, length) spans in the order
//	             applied. Each replica's spans continue where its last
//	             ended.
//	  pending    count, then (replica index, start, length) spans of local
//	             operations that Commit has not returned yet
//	  containers count, then the roots in (name, type) order and the
//	             nested containers in creator order. Each starts with its
//	             type byte, plus 0x80 if nested, followed by a root's name
//	             or a nested container's creator (replica index, counter).
//	             A text or list continues with its item count and six
//	             length-prefixed columns over its items in document order:
//	             flags, replicas, counters, lengths, origins, content. A
//	             list adds a seventh column, with the values of its live
//	             elements and the nested containers among its deleted
//	             ones, both encoded as in an update.
//	  deletes    per replica: count, then delete runs
//	  atoms      per replica: count, then its map and counter operations:
//	             counter gap, kind byte, container index, then as in an
//	             update
//	  held       count, then each held-back update, length-prefixed
//
// The items are stored in document order, so loading needs no merging,
// and most origins are implied by an item's neighbours (flag bits) instead
// of written out. Deleted code points, deleted list elements and replaced
// map values are not stored at all; their ids and positions are, because
// a replica that was offline may still send operations that refer to
// them. Map keys and counter sums are not stored either: loading replays
// the map and counter operations in history order.
//
// Version 1, tag 0x02, held root texts only; this version does not read
// it.
const (
	tagState   = 0x03
	tagStateV1 = 0x02
)

// flagNested marks a nested container in the type byte of the container
// table.
const flagNested = 0x80

// Item flag bits in the saved state.
const (
	flagDeleted     = 1 << 0
	flagSameReplica = 1 << 1 // same replica as the previous item

	leftShift       = 2 // left origin mode, 2 bits
	leftNone        = 0
	leftPrevious    = 1 // last element of the previous item
	leftPredecessor = 2 // the element before this item's first, same replica
	leftExplicit    = 3

	rightShift    = 4 // right origin mode, 2 bits
	rightNone     = 0
	rightNext     = 1 // first element of the next item
	rightExplicit = 2
	rightSame     = 3 // the previous item's right origin
)

// maxStateBody bounds the size of a saved state after decompression.
const maxStateBody = 1 << 30

// Save returns the whole document: every operation, the local edits not
// yet committed, and the held-back updates. Load restores it.
func (d *Doc) Save() ([]byte, error) {
	body := d.encodeState()

	var out bytes.Buffer
	var e encoder
	e.byte(tagState)
	e.uvarint(uint64(len(body)))
	out.Write(e.buf)
	// Level 6 compresses the automerge-paper trace to within 0.1% of level 9
	// in half the time.
	w, err := flate.NewWriter(&out, flate.DefaultCompression)
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
	// Replicas without operations, such as the local one of a document
	// opened and never edited, are left out, so that opening a document
	// and saving it again gives the same bytes whatever the replica.
	var table []ReplicaID
	for _, r := range sortedReplicas(d.replicas) {
		if d.replicas[r].next > 0 {
			table = append(table, r)
		}
	}
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

	containers := d.savedContainers()
	cindex := make(map[*container]uint64, len(containers))
	e.uvarint(uint64(len(containers)))
	for i, c := range containers {
		cindex[c] = uint64(i)
		if c.isRoot() {
			e.byte(byte(c.kind))
			e.string(c.name)
		} else {
			e.byte(byte(c.kind) | flagNested)
			e.uvarint(index[c.id.replica])
			e.uvarint(c.id.counter)
		}
		if c.kind == KindText || c.kind == KindList {
			encodeItems(&e, c, index)
		}
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

	for _, r := range table {
		encodeAtoms(&e, d.replicas[r].atoms, index, cindex)
	}

	e.uvarint(uint64(len(d.heldBack)))
	for _, h := range d.heldBack {
		e.bytes(h.raw)
	}
	return e.buf
}

// savedContainers returns the containers that Save writes, in the order it
// writes them: the roots that operations touched, by name and type, then
// every nested container, by the id of its first creator here.
func (d *Doc) savedContainers() []*container {
	var roots, nested []*container
	for _, c := range d.roots {
		if c.touched {
			roots = append(roots, c)
		}
	}
	for id, c := range d.nested {
		if c.id == id {
			nested = append(nested, c)
		}
	}
	slices.SortFunc(roots, func(a, b *container) int {
		if a.name != b.name {
			return strings.Compare(a.name, b.name)
		}
		return cmp.Compare(a.kind, b.kind)
	})
	slices.SortFunc(nested, func(a, b *container) int { return compareIDs(a.id, b.id) })
	return append(roots, nested...)
}

// encodeAtoms writes the map and counter operations of one replica.
func encodeAtoms(e *encoder, atoms []*atom, index map[ReplicaID]uint64, cindex map[*container]uint64) {
	e.uvarint(uint64(len(atoms)))
	var next uint64
	for _, a := range atoms {
		e.uvarint(a.id.counter - next)
		next = a.id.counter + 1
		e.byte(byte(a.kind))
		e.uvarint(cindex[a.owner])
		if a.kind == opCounterAdd {
			e.varint(a.amount)
			continue
		}
		e.string(a.key)
		e.uvarint(a.lamport)
		e.uvarint(uint64(len(a.preds)))
		for _, p := range a.preds {
			e.uvarint(index[p.replica])
			e.uvarint(p.counter)
		}
		if a.kind == opMapSet {
			e.value(a.value)
		}
	}
}

// encodeItems writes the items of a text or list as columns, so that
// similar values sit together for the compressor.
func encodeItems(e *encoder, c *container, index map[ReplicaID]uint64) {
	var items []*item
	c.tree.each(func(it *item) bool {
		items = append(items, it)
		return true
	})

	var flags, replicas, counters, lengths, origins, content, values encoder
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
		switch {
		case c.kind != KindList:
		case it.deleted:
			var markers []elementMarker
			for _, n := range c.doc.replicas[it.id.replica].elementsIn(it.id.counter, it.end()) {
				markers = append(markers, elementMarker{off: n.id.counter - it.id.counter, kind: n.kind})
			}
			encodeMarkers(&values, markers)
		default:
			for _, v := range it.values {
				values.value(v)
			}
		}
	}

	e.uvarint(uint64(len(items)))
	for _, col := range []*encoder{&flags, &replicas, &counters, &lengths, &origins, &content} {
		e.bytes(col.buf)
	}
	if c.kind == KindList {
		e.bytes(values.buf)
	}
}
