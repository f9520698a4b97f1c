// Package crdt is the replicated document at the core of Interlude: a
// conflict-free replicated data type (CRDT) that every device edits
// offline and that converges once the devices have exchanged their
// updates, without a server that can read it.
//
// A [Doc] holds named root containers: texts ([Text]), lists ([List]),
// maps ([Map]) and counters ([Counter]). A map value or a list element may
// itself be a container, created with [Map.SetNew] or [List.InsertNew];
// other values are plain JSON values. Each local edit is applied at once
// and recorded as operations with ids (replica, counter). [Doc.Commit]
// packs the edits made since the last commit into an update, an opaque
// byte string for the sync layer to encrypt and relay; [Doc.Apply] merges
// an update from another replica. [Doc.Save] and [Load] keep the whole
// document, including updates still waiting for their causes.
// [Doc.State] returns everything as JSON-like Go values. Like a map, a Doc
// is for one goroutine at a time: the caller serializes calls on it and
// on its containers.
//
// # Texts and lists
//
// Positions and counts are Unicode code points in a text and elements in
// a list; [UTF16ToCodePoint] and [CodePointToUTF16] convert the positions
// of JavaScript strings. Texts and lists share one merge algorithm. Every
// inserted element records two origins: the elements to its left and to
// its right when it was inserted, tombstones included. A remote insert
// goes between its origins. When inserts unknown to its writer sit there
// too, comparing their origins fixes the order, and the replica id breaks
// the remaining ties. This is the list form of FugueMax (Weidner and
// Kleppmann, "The Art of the Fugue: Minimizing Interleaving in
// Collaborative Text Editing", 2023). Runs typed concurrently at one place
// never interleave, whether typed forwards or backwards. Text typed next
// to text that its writer had seen stays next to it, even when a third
// replica inserts there concurrently.
//
// A delete names the elements it removes, so it affects only what its
// replica had seen: elements inserted concurrently inside a deleted range
// survive.
//
// # Maps
//
// Each key of a map is a multi-value register. A set or remove names the
// sets it replaces, which are the ones its replica had seen under the key.
// So a value set concurrently survives a remove, and concurrent sets all
// stay. The key shows the one with the highest Lamport time (counted per
// key), ties broken by the higher replica id, and [Map.GetAll] returns all
// of them.
//
// Containers of one type created concurrently under one key merge: when
// two replicas that have seen the same history of a key each call SetNew
// with the same type, both sets get the same Lamport time, and every
// replica treats the two new containers as one, whose contents merge by
// the rules of its type. Neither replica's entry vanishes, and a remove
// that saw only one of the creations leaves the merged container in place
// through the other. A SetNew made after seeing the key's container
// replaces it with a fresh one. A
// concurrent creation with another type, or one made after seeing other
// sets of the key (a higher Lamport time), follows the rule for values:
// one shows, GetAll returns both.
//
// A remove, or a delete of a list element, takes a nested container away
// with all of its content. An edit made inside the container concurrently
// is kept inside it but does not bring it back.
//
// # Counters and values
//
// A counter's value is the sum of every add. Adds are int64, and a local
// add that would take the sum outside the int64 range fails with
// [ErrCounterRange]; the sum is kept in 128 bits, so adds made
// concurrently that go past the range still converge, and
// [Counter.Int] reports the overflow.
//
// Plain values are JSON values. Integers stay exact across the int64 and
// uint64 ranges, other numbers are float64; updates encode them with
// varints and tags (see [Map.Set]).
//
// # Root containers
//
// A root name's type is fixed by the first operation on it; using the name
// with another type fails with [ErrTypeMismatch] and changes nothing.
// When replicas create one name with different types concurrently, all of
// them show the one of the lowest [Kind] (text, list, map, counter). The
// others stay in the document, saved and synced, but their edits fail.
//
// # Causality
//
// Every update lists its dependencies as a version vector: for each
// replica whose operations it refers to, how many of them must be applied
// first. Operations of one replica apply in counter order, so an update
// also waits for the earlier operations of the replicas it carries, and a
// [VersionVector] describes exactly which operations a document has.
// Apply holds back an update until its causes are applied, skips
// operations it already has (so duplicates are harmless) and rejects
// malformed bytes, or references to elements, sets or containers that do
// not exist, without changing the document.
//
// # Storage and deleted content
//
// The document stores runs, not single elements: a run typed by one
// replica is one item until an edit splits it. Items sit in a B-tree with
// element counts in the inner nodes, so a position is found in logarithmic
// time. Updates use a compact binary format of varints; saved state stores
// the items in document order as columns, compressed with DEFLATE, so its
// size grows with the number of runs and of map and counter operations,
// plus the live content.
//
// Deleted elements stay as tombstones forever: their ids, origins and
// positions in the order are kept, in memory and in saved state, because
// a replica that was offline may still send inserts that use them as
// origins, deletes that name them, or edits inside the nested containers
// they held. No ids are collected, so such late updates always apply.
// What is dropped is content that can never show again: the code points
// of deleted text, the values of deleted list elements and of map sets
// that a later set or remove replaced. Updates carry those runs and sets
// without content. A replica that lacks them also lacks the delete or
// replacement, which comes with them or in a later update, so it never
// needs the content. Nested containers of deleted elements and replaced
// sets are kept whole.
package crdt
