package crdt

import (
	"cmp"
	"maps"
	"slices"
)

// ReplicaID identifies one replica of a document: one device or session
// that makes edits. Callers choose it, normally as a random 64-bit value,
// and must never let two live replicas share one.
type ReplicaID uint64

// VersionVector maps each replica to the number of its operations that a
// document has applied. Operations of one replica are applied in counter
// order, so the counter c stands for operations 0 to c-1 of that replica.
// A missing replica counts as 0.
type VersionVector map[ReplicaID]uint64

// Clone returns an independent copy of v.
func (v VersionVector) Clone() VersionVector {
	return maps.Clone(v)
}

// Includes reports whether v has seen every operation that w has seen.
func (v VersionVector) Includes(w VersionVector) bool {
	for r, c := range w {
		if v[r] < c {
			return false
		}
	}
	return true
}

// maxCounter bounds operation counters well below the sentinel used for a
// missing origin, so that counter arithmetic can never overflow.
const maxCounter = 1 << 62

// opID names one operation, which for inserts is one code point: the
// replica that made it and that replica's counter for it.
type opID struct {
	replica ReplicaID
	counter uint64
}

// noID stands for a missing origin: the start of the text for a left
// origin, the end of the text for a right origin.
var noID = opID{counter: 1<<64 - 1}

func (o opID) isNone() bool { return o.counter == noID.counter }

// plus returns the id k operations later from the same replica.
func (o opID) plus(k int) opID {
	return opID{replica: o.replica, counter: o.counter + uint64(k)}
}

// compareIDs orders ids by replica, then counter. It breaks ties between
// concurrent inserts, so every replica must use the same order.
func compareIDs(a, b opID) int {
	if c := cmp.Compare(a.replica, b.replica); c != 0 {
		return c
	}
	return cmp.Compare(a.counter, b.counter)
}

// span is the counters [start, end) of one replica.
type span struct {
	replica    ReplicaID
	start, end uint64
}

// appendSpan appends s to spans, extending the last span instead when s
// continues it.
func appendSpan(spans []span, s span) []span {
	if n := len(spans); n > 0 {
		last := &spans[n-1]
		if last.replica == s.replica && last.end == s.start {
			last.end = s.end
			return spans
		}
	}
	return append(spans, s)
}

// inSpans reports whether spans contain id.
func inSpans(spans []span, id opID) bool {
	for _, s := range spans {
		if s.replica == id.replica && id.counter >= s.start && id.counter < s.end {
			return true
		}
	}
	return false
}

// sortedReplicas returns the keys of m in ascending order, so that
// encodings do not depend on map iteration order.
func sortedReplicas[V any](m map[ReplicaID]V) []ReplicaID {
	return slices.Sorted(maps.Keys(m))
}
