package crdt

import (
	"cmp"
	"slices"
	"sort"
)

// replicaState is the part of a document that one replica's operations
// made. Every counter below next is in exactly one of items, deletes and
// atoms.
type replicaState struct {
	id      ReplicaID
	next    uint64      // operations [0, next) are applied
	items   idIndex     // inserted runs of this replica, by counter
	deletes []deleteRun // delete operations of this replica, by counter
	atoms   []*atom     // map and counter operations, by counter
	// elements lists the nested containers that list elements inserted
	// by this replica hold, by counter, deleted elements included.
	elements []*container
}

// addElement records the nested container c of a list element.
func (rs *replicaState) addElement(c *container) {
	i, _ := slices.BinarySearchFunc(rs.elements, c.id.counter, func(e *container, counter uint64) int {
		return cmp.Compare(e.id.counter, counter)
	})
	rs.elements = slices.Insert(rs.elements, i, c)
}

// elementsIn returns the nested containers held by the list elements with
// counters [lo, hi).
func (rs *replicaState) elementsIn(lo, hi uint64) []*container {
	i := sort.Search(len(rs.elements), func(i int) bool { return rs.elements[i].id.counter >= lo })
	j := i
	for j < len(rs.elements) && rs.elements[j].id.counter < hi {
		j++
	}
	return rs.elements[i:j]
}

// atom is a map or counter operation, which takes one counter.
type atom struct {
	id      opID
	kind    opKind     // opMapSet, opMapRemove or opCounterAdd
	owner   *container // the map or counter
	key     string     // map operations: the key
	lamport uint64     // map operations: Lamport time on the key
	preds   []opID     // map operations: the sets it replaces, ascending
	// value is the set's value: a plain value, or the *container it
	// created. Once another operation replaces the set, a plain value is
	// dropped, because it can never show again.
	value    any
	replaced bool  // set: another operation has replaced it
	amount   int64 // counter add
}

// findAtom returns the map or counter operation with counter, or nil.
func (rs *replicaState) findAtom(counter uint64) *atom {
	i := sort.Search(len(rs.atoms), func(i int) bool { return rs.atoms[i].id.counter >= counter })
	if i < len(rs.atoms) && rs.atoms[i].id.counter == counter {
		return rs.atoms[i]
	}
	return nil
}

// deleteRun records delete operations with consecutive counters whose
// targets are consecutive code points of one replica, walked forwards or
// backwards. Backspacing through a word makes one backward run.
type deleteRun struct {
	counter  uint64 // counter of the first delete operation
	length   uint64 // number of delete operations, one per code point
	target   opID   // code point deleted by the first operation
	backward bool   // operation counter+k deletes target.counter-k, not +k
}

func (d deleteRun) end() uint64 { return d.counter + d.length }

// targetAt returns the code point deleted by operation counter.
func (d deleteRun) targetAt(counter uint64) opID {
	k := counter - d.counter
	if d.backward {
		return opID{replica: d.target.replica, counter: d.target.counter - k}
	}
	return opID{replica: d.target.replica, counter: d.target.counter + k}
}

// appendDeleteRun appends run to runs, extending the last run instead
// when run continues it in the same direction, counters and targets both.
func appendDeleteRun(runs []deleteRun, run deleteRun) []deleteRun {
	if extendDeleteRun(runs, run) {
		return runs
	}
	return append(runs, run)
}

// extendDeleteRun extends the last of runs by run, in place, and reports
// whether run continues it in the same direction, counters and targets
// both.
func extendDeleteRun(runs []deleteRun, run deleteRun) bool {
	if n := len(runs); n > 0 {
		last := &runs[n-1]
		if last.end() == run.counter && last.target.replica == run.target.replica {
			canForward := (!last.backward || last.length == 1) && (!run.backward || run.length == 1)
			canBackward := (last.backward || last.length == 1) && (run.backward || run.length == 1)
			switch {
			case canForward && run.target.counter == last.target.counter+last.length:
				last.backward = false
				last.length += run.length
				return true
			case canBackward && last.target.counter >= last.length && run.target.counter == last.target.counter-last.length:
				last.backward = true
				last.length += run.length
				return true
			}
		}
	}
	return false
}

// findDelete returns the index of the delete run that contains counter,
// or -1.
func (rs *replicaState) findDelete(counter uint64) int {
	// The binary searches here are written out, without sort.Search's
	// function call per probe, because they run for every remote
	// operation and every run of a loaded document.
	lo, hi := 0, len(rs.deletes)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if rs.deletes[mid].end() > counter {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if lo < len(rs.deletes) && rs.deletes[lo].counter <= counter {
		return lo
	}
	return -1
}

// idIndex finds the item that holds a given counter of one replica. Items
// are kept sorted by counter in short chunks, so a lookup is two binary
// searches and a split inserts into one chunk only.
type idIndex struct {
	chunks [][]*item
}

const maxChunkItems = 128

// find returns the item holding counter and the offset of counter in it,
// or nil if no item holds it (it is a delete operation or unknown).
func (x *idIndex) find(counter uint64) (*item, int) {
	ci := x.chunkFor(counter)
	if ci < 0 {
		return nil, 0
	}
	it := x.chunks[ci][lastAtOrBefore(x.chunks[ci], counter)]
	if counter >= it.end() {
		return nil, 0
	}
	return it, int(counter - it.id.counter)
}

// chunkFor returns the index of the last chunk whose first item starts at
// or before counter, or -1.
func (x *idIndex) chunkFor(counter uint64) int {
	lo, hi := 0, len(x.chunks)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if x.chunks[mid][0].id.counter > counter {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo - 1
}

// lastAtOrBefore returns the index of the last item of chunk that starts
// at or before counter; the first item must.
func lastAtOrBefore(chunk []*item, counter uint64) int {
	lo, hi := 0, len(chunk)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if chunk[mid].id.counter > counter {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo - 1
}

// build fills an empty index with items sorted by counter.
func (x *idIndex) build(items []*item) {
	for start := 0; start < len(items); start += maxChunkItems {
		end := min(start+maxChunkItems, len(items))
		chunk := make([]*item, end-start, maxChunkItems)
		copy(chunk, items[start:end])
		x.chunks = append(x.chunks, chunk)
	}
}

// add inserts it in counter order. Appending is the common case, because
// a replica's new runs always have its highest counters.
func (x *idIndex) add(it *item) {
	n := len(x.chunks)
	if n == 0 {
		x.chunks = append(x.chunks, []*item{it})
		return
	}
	last := x.chunks[n-1]
	if it.id.counter > last[len(last)-1].id.counter {
		if len(last) >= maxChunkItems {
			x.chunks = append(x.chunks, make([]*item, 0, maxChunkItems))
			n++
		}
		x.chunks[n-1] = append(x.chunks[n-1], it)
		return
	}

	ci := max(x.chunkFor(it.id.counter), 0)
	chunk := x.chunks[ci]
	i := sort.Search(len(chunk), func(i int) bool { return chunk[i].id.counter > it.id.counter })
	chunk = slices.Insert(chunk, i, it)
	if len(chunk) > 2*maxChunkItems {
		upper := slices.Clone(chunk[maxChunkItems:])
		chunk = chunk[:maxChunkItems:maxChunkItems]
		x.chunks = slices.Insert(x.chunks, ci+1, upper)
	}
	x.chunks[ci] = chunk
}

// remove takes it out of the index.
func (x *idIndex) remove(it *item) {
	ci := x.chunkFor(it.id.counter)
	if ci < 0 {
		return
	}
	chunk := x.chunks[ci]
	i := slices.Index(chunk, it)
	if i < 0 {
		return
	}
	chunk = slices.Delete(chunk, i, i+1)
	if len(chunk) == 0 {
		x.chunks = slices.Delete(x.chunks, ci, ci+1)
		return
	}
	x.chunks[ci] = chunk
}

// countFrom returns the number of items that start before counter.
func (x *idIndex) countFrom(counter uint64) int {
	ci := x.chunkFor(counter)
	if ci < 0 {
		return 0
	}
	n := 0
	for _, chunk := range x.chunks[:ci] {
		n += len(chunk)
	}
	chunk := x.chunks[ci]
	return n + sort.Search(len(chunk), func(i int) bool { return chunk[i].id.counter >= counter })
}

// opsIn returns an upper bound of the runs of operations that the
// counters [lo, hi) hold: items, delete runs and atoms, each counted
// whole if it overlaps the range.
func (rs *replicaState) opsIn(lo, hi uint64) int {
	if lo >= hi {
		return 0
	}
	items := rs.items.countFrom(hi) - rs.items.countFrom(lo) + 1
	deletes := sort.Search(len(rs.deletes), func(i int) bool { return rs.deletes[i].counter >= hi }) -
		sort.Search(len(rs.deletes), func(i int) bool { return rs.deletes[i].end() > lo })
	atoms := sort.Search(len(rs.atoms), func(i int) bool { return rs.atoms[i].id.counter >= hi }) -
		sort.Search(len(rs.atoms), func(i int) bool { return rs.atoms[i].id.counter >= lo })
	return items + max(deletes, 0) + atoms
}

// each calls f for every item in counter order.
func (x *idIndex) each(f func(*item)) {
	for _, chunk := range x.chunks {
		for _, it := range chunk {
			f(it)
		}
	}
}

// opCursor walks the operations of one replica in counter order, which
// saves the searches of findDelete, items.find and findAtom when every
// counter of a range is visited.
type opCursor struct {
	rs     *replicaState
	seen   uint64 // Load: operations [0, seen) have been replayed
	chunk  int    // next item: rs.items.chunks[chunk][index]
	index  int
	delete int // next delete run: rs.deletes[delete]
	atom   int // next atom: rs.atoms[atom]
}

// seek moves the cursor to the operations that hold counter c and after.
func (r *opCursor) seek(c uint64) {
	rs := r.rs
	r.delete = sort.Search(len(rs.deletes), func(i int) bool { return rs.deletes[i].end() > c })
	r.atom = sort.Search(len(rs.atoms), func(i int) bool { return rs.atoms[i].id.counter >= c })
	r.chunk, r.index = 0, 0
	if ci := rs.items.chunkFor(c); ci >= 0 {
		chunk := rs.items.chunks[ci]
		r.chunk, r.index = ci, lastAtOrBefore(chunk, c)
		if chunk[r.index].end() <= c {
			r.index++
			if r.index == len(chunk) {
				r.chunk, r.index = ci+1, 0
			}
		}
	}
}

// at returns the item, delete run or atom that holds counter c, which
// must not be below the cursor.
func (r *opCursor) at(c uint64) (*item, *deleteRun, *atom) {
	rs := r.rs
	if r.delete < len(rs.deletes) && rs.deletes[r.delete].counter <= c {
		return nil, &rs.deletes[r.delete], nil
	}
	if r.atom < len(rs.atoms) && rs.atoms[r.atom].id.counter == c {
		return nil, nil, rs.atoms[r.atom]
	}
	if r.chunk < len(rs.items.chunks) {
		if it := rs.items.chunks[r.chunk][r.index]; it.id.counter <= c && c < it.end() {
			return it, nil, nil
		}
	}
	return nil, nil, nil
}

// passed moves the cursor past every operation that ends at or before end.
func (r *opCursor) passed(end uint64) {
	rs := r.rs
	if r.delete < len(rs.deletes) && rs.deletes[r.delete].end() <= end {
		r.delete++
	}
	if r.atom < len(rs.atoms) && rs.atoms[r.atom].id.counter < end {
		r.atom++
	}
	if r.chunk < len(rs.items.chunks) && rs.items.chunks[r.chunk][r.index].end() <= end {
		r.index++
		if r.index == len(rs.items.chunks[r.chunk]) {
			r.chunk, r.index = r.chunk+1, 0
		}
	}
}
