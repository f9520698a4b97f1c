package crdt

// Updates built by hand for tests and fuzz seeds: shapes that Commit does
// not make but that a faulty or hostile replica could send.

// hugeDeletedListRun returns an update that inserts 2^40 list elements
// that were deleted before it was made, the last of which holds a map
// with one key set. A receiver must not spend time or memory per element.
func hugeDeletedListRun() []byte {
	const n = 1 << 40
	return encodeUpdate(&update{
		deps: VersionVector{},
		containers: []containerRef{
			{kind: KindList, name: "log", creator: noID},
			{kind: KindMap, creator: opID{replica: 1, counter: n - 1}},
		},
		ops: []op{
			{kind: opListInsert, deleted: true, id: opID{replica: 1}, length: n, left: noID, right: noID,
				markers: []elementMarker{{off: n - 1, kind: KindMap}}},
			{kind: opMapSet, container: 1, id: opID{replica: 1, counter: n}, length: 1, left: noID, right: noID,
				atom: &atom{key: "k", lamport: 1, value: int64(2)}},
		},
	})
}

// invalidMapUpdates returns updates that break the rules of maps and
// nested containers, by the file name of their fuzz seed.
func invalidMapUpdates() map[string]*update {
	meta := containerRef{kind: KindMap, name: "meta", creator: noID}
	set := func(counter uint64, key string, lamport uint64, preds []opID, value any) op {
		return op{kind: opMapSet, id: opID{replica: 1, counter: counter}, length: 1, left: noID, right: noID,
			atom: &atom{key: key, lamport: lamport, preds: preds, value: value}}
	}
	return map[string]*update{
		"map-set-dropped-and-never-replaced": {
			deps: VersionVector{}, containers: []containerRef{meta},
			ops: []op{set(0, "k", 1, nil, dropped)},
		},
		"map-set-replaces-set-of-other-key": {
			deps: VersionVector{}, containers: []containerRef{meta},
			ops: []op{set(0, "a", 1, nil, "x"), set(1, "b", 2, []opID{{replica: 1, counter: 0}}, "y")},
		},
		"map-set-lamport-not-above-replaced": {
			deps: VersionVector{}, containers: []containerRef{meta},
			ops: []op{set(0, "a", 3, nil, "x"), set(1, "a", 3, []opID{{replica: 1, counter: 0}}, "y")},
		},
		"nested-text-edited-before-its-creation": {
			deps: VersionVector{},
			containers: []containerRef{
				{kind: KindText, creator: opID{replica: 1, counter: 1}},
				meta,
			},
			ops: []op{
				{kind: opInsert, container: 0, id: opID{replica: 1}, length: 1, left: noID, right: noID, content: []rune("x")},
				{kind: opMapSet, container: 1, id: opID{replica: 1, counter: 1}, length: 1, left: noID, right: noID,
					atom: &atom{key: "t", lamport: 1, value: kindMarker(KindText)}},
			},
		},
		"nested-container-of-wrong-type": {
			deps: VersionVector{},
			containers: []containerRef{
				meta,
				{kind: KindList, creator: opID{replica: 1, counter: 0}},
			},
			ops: []op{
				set(0, "t", 1, nil, kindMarker(KindText)),
				{kind: opListInsert, container: 1, id: opID{replica: 1, counter: 1}, length: 1, left: noID, right: noID, values: []any{int64(1)}},
			},
		},
	}
}

// originsEqualInOneUpdate returns an update that inserts "ab" and then
// "x" with the "b" as both its left and its right origin, which validation
// cannot reject because both origins arrive in the same update.
func originsEqualInOneUpdate() []byte {
	b := opID{replica: 1, counter: 1}
	return encodeUpdate(&update{
		deps:       VersionVector{},
		containers: []containerRef{{kind: KindText, name: "body", creator: noID}},
		ops: []op{
			{kind: opInsert, id: opID{replica: 1}, length: 2, left: noID, right: noID, content: []rune("ab")},
			{kind: opInsert, id: opID{replica: 1, counter: 2}, length: 1, left: b, right: b, content: []rune("x")},
		},
	})
}
