package crdt

import (
	"fmt"
	"slices"
)

// Doc is one replica of a document: named root containers, the operations
// that built them, and the updates held back until their causes arrive.
//
// A Doc is not safe for concurrent use: its caller serializes every call
// on it and on the containers it returns, as a map's would. The client
// already holds its own lock around each document. A lock in Doc took
// about a fifth of the time of typing in WebAssembly, where every atomic
// operation is a function call.
type Doc struct {
	replica  ReplicaID
	own      *replicaState // state of replica; edits get counters from own.next
	replicas map[ReplicaID]*replicaState

	roots map[rootKey]*container
	// nested maps the id of every operation that created a nested
	// container to it. Concurrent creations that merged map to one
	// container.
	nested map[opID]*container

	// history lists every applied operation in the order it was applied,
	// which respects causality, so re-encoding it in this order gives
	// updates that any replica can apply front to back.
	history []span

	// uncommitted lists the local operations that Commit has not yet
	// returned.
	uncommitted []span

	heldBack []*heldUpdate // updates waiting for their causes, oldest first

	// spare holds items not yet handed out by newItem.
	spare []item
}

// itemsPerSlab is how many items newItem allocates at once.
const itemsPerSlab = 128

// newItem returns a pointer to a copy of v in a slab of items, because
// typing makes an item per run and one allocation per item costs more.
// An item dropped by a merge keeps its slab alive.
func (d *Doc) newItem(v item) *item {
	if len(d.spare) == 0 {
		d.spare = make([]item, itemsPerSlab)
	}
	it := &d.spare[0]
	d.spare = d.spare[1:]
	*it = v
	return it
}

// heldUpdate is an update whose causes have not all been applied.
type heldUpdate struct {
	raw []byte
	upd *update
}

// NewDoc returns an empty document whose local edits belong to replica.
func NewDoc(replica ReplicaID) *Doc {
	d := newDoc()
	d.setReplica(replica)
	return d
}

func newDoc() *Doc {
	return &Doc{
		replicas: make(map[ReplicaID]*replicaState),
		roots:    make(map[rootKey]*container),
		nested:   make(map[opID]*container),
	}
}

func (d *Doc) setReplica(replica ReplicaID) {
	d.replica = replica
	d.own = d.replicaState(replica)
}

// replicaState returns the state of replica r, creating it when needed.
func (d *Doc) replicaState(r ReplicaID) *replicaState {
	rs := d.replicas[r]
	if rs == nil {
		rs = &replicaState{id: r}
		d.replicas[r] = rs
	}
	return rs
}

// Replica returns the replica that local edits are made as.
func (d *Doc) Replica() ReplicaID {
	return d.replica
}

// Version returns how many operations of each replica the document has
// applied. Held-back updates are not counted.
func (d *Doc) Version() VersionVector {
	v := make(VersionVector, len(d.replicas))
	for r, rs := range d.replicas {
		if rs.next > 0 {
			v[r] = rs.next
		}
	}
	return v
}

// applied returns the number of operations of replica r that the document
// has applied.
func (d *Doc) applied(r ReplicaID) uint64 {
	if rs := d.replicas[r]; rs != nil {
		return rs.next
	}
	return 0
}

// HeldBack returns the number of updates waiting for their causes.
func (d *Doc) HeldBack() int {
	return len(d.heldBack)
}

// State returns the value of every root container that has been edited
// here or by an applied update, keyed by name. A text is a string, a list
// a []any, a map a map[string]any and a counter an int64, and nested
// containers appear in place as their values. Plain values are copies in
// the forms that Map.Set describes.
//
// When replicas created roots of different types under one name
// concurrently, State shows the one of the lowest Kind, text before list
// before map before counter. The others stay in the document, and edits
// to them fail with ErrTypeMismatch.
func (d *Doc) State() map[string]any {

	state := make(map[string]any)
	for key, c := range d.roots {
		if c.touched && !c.blocked {
			state[key.name] = c.value()
		}
	}
	return state
}

// checkOwnCounter returns ErrCounterOverflow if n more local operations
// would take the replica past the maximum counter.
func (d *Doc) checkOwnCounter(n int) error {
	if d.own.next+uint64(n) > maxCounter {
		return d.counterOverflow()
	}
	return nil
}

func (d *Doc) counterOverflow() error {
	return fmt.Errorf("edit as replica %d with %d operations: %w", d.replica, d.own.next, ErrCounterOverflow)
}

// applyLocalAtom makes and applies a local map or counter operation. A map
// operation replaces every value of its key that the replica has seen and
// gets a Lamport time above every operation on the key.
func (d *Doc) applyLocalAtom(a *atom) {
	a.id = opID{replica: d.replica, counter: d.own.next}
	if a.kind != opCounterAdd {
		a.lamport = 1
		if mk := a.owner.keys[a.key]; mk != nil {
			a.lamport = mk.lamport + 1
			for _, e := range mk.live {
				a.preds = append(a.preds, e.id)
			}
			slices.SortFunc(a.preds, compareIDs)
		}
	}
	// Recorded first, so that applyMapOp finds a among the uncommitted
	// operations.
	d.advanceLocal(a.id.counter, 1)
	d.applyAtom(d.own, a)
}

// applyAtom applies a map or counter operation of replica rs and records
// it.
func (d *Doc) applyAtom(rs *replicaState, a *atom) {
	d.applyAtomEffect(a)
	rs.atoms = append(rs.atoms, a)
}

// applyAtomEffect applies a to its map or counter without recording a.
// Load uses it to replay recorded operations.
func (d *Doc) applyAtomEffect(a *atom) {
	if a.kind == opCounterAdd {
		a.owner.sum = a.owner.sum.add(a.amount)
	} else {
		d.applyMapOp(a)
	}
	d.touch(a.owner)
}

// Commit returns one update with every local edit made since the last
// Commit, or nil if there were none. Local edits are visible in the
// document at once; Commit only packs them for sending.
func (d *Doc) Commit() []byte {

	if len(d.uncommitted) == 0 {
		return nil
	}
	u := d.collect(coverGaps(d.uncommitted))
	d.uncommitted = nil
	data := encodeUpdate(u)
	// Sets that remote operations replaced kept their values for this
	// update only; every later update carries their replacement too.
	for i := range u.ops {
		if a := u.ops[i].atom; a != nil && a.replaced {
			a.dropValue()
		}
	}
	return data
}

// UpdatesSince returns, in causal order, the updates that a replica at
// version v lacks: one update with every applied operation that v does not
// include, followed by the held-back updates that v does not include.
// It returns nil if v has everything.
func (d *Doc) UpdatesSince(v VersionVector) [][]byte {

	var spans []span
	for _, s := range d.history {
		start := max(s.start, v[s.replica])
		if start < s.end {
			spans = append(spans, span{replica: s.replica, start: start, end: s.end})
		}
	}
	var out [][]byte
	if len(spans) > 0 {
		out = append(out, encodeUpdate(d.collect(spans)))
	}
	for _, h := range d.heldBack {
		if !h.upd.coveredBy(func(r ReplicaID) uint64 { return v[r] }) {
			out = append(out, slices.Clone(h.raw))
		}
	}
	return out
}

// Apply applies an update made by Commit or UpdatesSince on any replica.
// Operations the document already has are skipped, so applying an update
// twice changes nothing. An update whose causes have not all been applied
// is held back, without error, and applied as soon as they are; HeldBack
// counts such updates. Malformed bytes, and updates that refer to
// operations that neither the document nor the update's dependencies
// contain, return an error wrapping ErrInvalidUpdate and leave the
// document unchanged. A held-back update that turns out to be invalid once
// its causes arrive is dropped.
func (d *Doc) Apply(data []byte) error {
	u, err := decodeUpdate(data)
	if err != nil {
		return err
	}

	switch {
	case u.coveredBy(d.applied):
		return nil
	case !d.ready(u):
		d.holdBack(data, u)
		return nil
	}
	if err := d.validate(u); err != nil {
		return err
	}
	d.applyValidated(u)
	d.releaseHeld()
	return nil
}

// holdBack keeps an update until its causes arrive, once per distinct
// update.
func (d *Doc) holdBack(data []byte, u *update) {
	for _, h := range d.heldBack {
		if string(h.raw) == string(data) {
			return
		}
	}
	d.heldBack = append(d.heldBack, &heldUpdate{raw: slices.Clone(data), upd: u})
}

// releaseHeld applies every held-back update whose causes have now been
// applied, repeating until no more can be, and drops those that became
// duplicates or turned out invalid.
func (d *Doc) releaseHeld() {
	for progress := true; progress; {
		progress = false
		kept := d.heldBack[:0]
		for _, h := range d.heldBack {
			switch {
			case h.upd.coveredBy(d.applied):
				progress = true
			case d.ready(h.upd):
				progress = true
				if d.validate(h.upd) == nil {
					d.applyValidated(h.upd)
				}
			default:
				kept = append(kept, h)
			}
		}
		clear(d.heldBack[len(kept):])
		d.heldBack = kept
	}
}
