package relay

import (
	"github.com/dgraph-io/badger/v4"

	"interlude/sync/envelope"
)

// Hooks for the external tests of package relay_test.

const (
	MaxListGrants = maxListGrants
	MaxLogReply   = maxLogReply
)

// CacheStats is the membership cache's counters.
type CacheStats = cacheStats

// MembershipCache returns the number of membership states s caches now,
// and the cache's counters since s opened.
func MembershipCache(s *Server) (cached int, stats CacheStats) {
	return s.store.states.len(), s.store.states.statistics()
}

// WriteMemberships stores a membership record of device in each of docs,
// added by addedBy with the sealed key sealed, straight into Badger. It
// builds the device index that ListDocs reads without a membership log.
func WriteMemberships(s *Server, device, addedBy [32]byte, docs []envelope.DocID, sealed []byte) error {
	// Badger bounds the size of one transaction, so the records go in
	// batches.
	const batch = 1000
	for start := 0; start < len(docs); start += batch {
		err := s.store.db.Update(func(txn *badger.Txn) error {
			for _, doc := range docs[start:min(start+batch, len(docs))] {
				if err := setMember(txn, doc, device, addedBy, sealed); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// SetMaxConnClaims sets the most document keys one connection may claim
// and returns a function that restores the limit.
func SetMaxConnClaims(n int) (restore func()) {
	old := maxConnClaims
	maxConnClaims = n
	return func() { maxConnClaims = old }
}
