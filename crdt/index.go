package crdt

import (
	"slices"
	"sort"
)

// replicaState is the part of a document that one replica's operations made.
type replicaState struct {
	id      ReplicaID
	next    uint64      // operations [0, next) are applied
	items   idIndex     // inserted runs of this replica, by counter
	deletes []deleteRun // delete operations of this replica, by counter
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
	if n := len(runs); n > 0 {
		last := &runs[n-1]
		if last.end() == run.counter && last.target.replica == run.target.replica {
			canForward := (!last.backward || last.length == 1) && (!run.backward || run.length == 1)
			canBackward := (last.backward || last.length == 1) && (run.backward || run.length == 1)
			switch {
			case canForward && run.target.counter == last.target.counter+last.length:
				last.backward = false
				last.length += run.length
				return runs
			case canBackward && last.target.counter >= last.length && run.target.counter == last.target.counter-last.length:
				last.backward = true
				last.length += run.length
				return runs
			}
		}
	}
	return append(runs, run)
}

// findDelete returns the index of the delete run that contains counter,
// or -1.
func (rs *replicaState) findDelete(counter uint64) int {
	i := sort.Search(len(rs.deletes), func(i int) bool { return rs.deletes[i].end() > counter })
	if i < len(rs.deletes) && rs.deletes[i].counter <= counter {
		return i
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
	chunk := x.chunks[ci]
	i := sort.Search(len(chunk), func(i int) bool { return chunk[i].id.counter > counter }) - 1
	it := chunk[i]
	if counter >= it.end() {
		return nil, 0
	}
	return it, int(counter - it.id.counter)
}

// chunkFor returns the index of the last chunk whose first item starts at
// or before counter, or -1.
func (x *idIndex) chunkFor(counter uint64) int {
	return sort.Search(len(x.chunks), func(i int) bool { return x.chunks[i][0].id.counter > counter }) - 1
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

// each calls f for every item in counter order.
func (x *idIndex) each(f func(*item)) {
	for _, chunk := range x.chunks {
		for _, it := range chunk {
			f(it)
		}
	}
}
