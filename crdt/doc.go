// Package crdt is the replicated document at the core of Interlude: a
// conflict-free replicated data type (CRDT) that every device edits
// offline and that converges once the devices have exchanged their
// updates, without a server that can read it.
//
// A [Doc] holds named root containers; today these are texts ([Text]).
// Each local edit is applied at once and recorded as operations with ids
// (replica, counter). [Doc.Commit] packs the edits made since the last
// commit into an update, an opaque byte string for the sync layer to
// encrypt and relay; [Doc.Apply] merges an update from another replica.
// [Doc.Save] and [Load] keep the whole document, including updates still
// waiting for their causes.
//
// # Text merge rules
//
// Positions and counts are Unicode code points. Every inserted code point
// records two origins: the code points to its left and to its right when
// it was typed, tombstones included. A remote insert goes between its
// origins. When inserts unknown to its writer sit there too, comparing
// their origins fixes the order, and the replica id breaks the remaining
// ties. This is the list form of FugueMax (Weidner and Kleppmann, "The Art
// of the Fugue: Minimizing Interleaving in Collaborative Text Editing",
// 2023). Runs typed concurrently at one place never interleave, whether
// typed forwards or backwards. Text typed next to text that its writer had
// seen stays next to it, even when a third replica inserts there
// concurrently.
//
// A delete names the code points it removes, so it affects only what its
// replica had seen: text inserted concurrently inside a deleted range
// survives. Deleted code points stay as tombstones, without their content,
// because later inserts may use them as origins.
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
// malformed bytes without changing the document.
//
// # Storage
//
// The document stores runs of code points, not single ones: a run typed
// by one replica is one item until an edit splits it. Items sit in a
// B-tree with code point counts in the inner nodes, so a position is found
// in logarithmic time. Updates use a compact binary format of varints;
// saved state stores the items in document order as columns, compressed
// with DEFLATE.
package crdt
