package relay

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"interlude/sync/envelope"
	"interlude/sync/wire"
)

// Document keys.
//
// A device can be a member of a document under a key it derives for that
// document alone, so the member records, membership logs and envelope
// chains this relay stores name a different key in each document. A
// connection still authenticates with its device key; Claim then proves,
// one signature per document over the connection's challenge, which
// document keys it holds. Every check that named the connection's device
// before now accepts any of the keys it holds for the document at hand.

// maxConnClaims bounds the pairs of document and key one connection may
// claim, so a client cannot grow the relay's memory without end. It is
// far above the documents one person keeps.
var maxConnClaims = 1 << 16

// claim checks every proof of m and, if all verify, records the keys as
// this connection's.
func (c *conn) claim(m *wire.Claim) wire.Message {
	if len(m.Claims) == 0 || len(m.Claims) > wire.MaxClaims {
		return c.reject(m.Ref, wire.CodeMalformed, nil, fmt.Sprintf("Claim with %d document keys: send 1 to %d", len(m.Claims), wire.MaxClaims))
	}
	for i := range m.Claims {
		if err := wire.VerifyClaim(&m.Claims[i], c.host, c.challenge); err != nil {
			return c.reject(m.Ref, wire.CodeAuthFailed, nil, fmt.Sprintf("claim %d of %d: %v; no key of this Claim was taken", i+1, len(m.Claims), err))
		}
	}

	c.claimMu.Lock()
	defer c.claimMu.Unlock()
	if c.claims == nil {
		c.claims = make(map[envelope.DocID][]deviceKey)
		c.claimed = make(map[deviceKey]struct{})
	}
	// Only pairs of document and key new to the connection count against
	// the limit, so a client may claim a key again.
	added := 0
	for _, cl := range m.Claims {
		if !slices.Contains(c.claims[envelope.DocID(cl.Doc)], deviceKey(cl.Key)) {
			added++
		}
	}
	if c.nclaims+added > maxConnClaims {
		return c.reject(m.Ref, wire.CodeTooLarge, nil, fmt.Sprintf("this connection would hold more than %d document keys: open another connection for the rest", maxConnClaims))
	}
	for _, cl := range m.Claims {
		doc, key := envelope.DocID(cl.Doc), deviceKey(cl.Key)
		if key == c.device || slices.Contains(c.claims[doc], key) {
			continue
		}
		c.claims[doc] = append(c.claims[doc], key)
		c.claimed[key] = struct{}{}
		c.nclaims++
	}
	c.log.Debug("document keys claimed", "ref", m.Ref, "claims", len(m.Claims))
	return &wire.OK{Ref: m.Ref}
}

// keysFor returns the keys this connection acts under in doc: its
// device's key first, then the keys it claimed for doc.
func (c *conn) keysFor(doc envelope.DocID) []deviceKey {
	c.claimMu.RLock()
	defer c.claimMu.RUnlock()
	return append([]deviceKey{c.device}, c.claims[doc]...)
}

// holds reports whether key is this connection's device key or a key
// it claimed.
func (c *conn) holds(key deviceKey) bool {
	if c.device == key {
		return true
	}
	c.claimMu.RLock()
	defer c.claimMu.RUnlock()
	_, ok := c.claimed[key]
	return ok
}

// claimedGrants returns this connection's grants through claimed keys,
// for documents with ids greater than after, in document id order.
func (c *conn) claimedGrants(after []byte) ([]wire.Grant, error) {
	c.claimMu.RLock()
	type pair struct {
		doc envelope.DocID
		key deviceKey
	}
	var pairs []pair
	for doc, keys := range c.claims {
		if bytes.Compare(doc[:], after) <= 0 {
			continue
		}
		for _, k := range keys {
			pairs = append(pairs, pair{doc, k})
		}
	}
	c.claimMu.RUnlock()

	var grants []wire.Grant
	for _, p := range pairs {
		g, ok, err := c.srv.store.grant(p.doc, p.key)
		if err != nil {
			return nil, err
		}
		if ok {
			grants = append(grants, g)
		}
	}
	slices.SortFunc(grants, func(a, b wire.Grant) int { return bytes.Compare(a.Doc, b.Doc) })
	return grants, nil
}

// mergeGrants merges the device's page of grants, which ends early when
// more is set, with the grants through claimed keys, one grant per
// document, and cuts the result to limit. It returns whether grants are
// left for a later page.
func mergeGrants(device []wire.Grant, more bool, claimed []wire.Grant, limit int) ([]wire.Grant, bool) {
	if more && len(device) > 0 {
		// Documents past the device's page may hold device grants this
		// page did not read, so claimed grants past it wait for the
		// next page.
		last := device[len(device)-1].Doc
		i, _ := slices.BinarySearchFunc(claimed, last, func(g wire.Grant, doc []byte) int { return bytes.Compare(g.Doc, doc) })
		for i < len(claimed) && bytes.Equal(claimed[i].Doc, last) {
			i++
		}
		claimed = claimed[:i]
	}
	all := append(slices.Clone(device), claimed...)
	slices.SortStableFunc(all, func(a, b wire.Grant) int { return bytes.Compare(a.Doc, b.Doc) })
	all = slices.CompactFunc(all, func(a, b wire.Grant) bool { return bytes.Equal(a.Doc, b.Doc) })
	if len(all) > limit {
		return all[:limit], true
	}
	return all, more
}

// isMemberAny reports whether any of keys is a member of doc.
func (s *store) isMemberAny(doc envelope.DocID, keys []deviceKey) (bool, error) {
	for _, k := range keys {
		member, err := s.isMember(doc, k)
		if member || err != nil {
			return member, err
		}
	}
	return false, nil
}

// grant returns key's grant in doc, if key is a member of it.
func (s *store) grant(doc envelope.DocID, key deviceKey) (g wire.Grant, ok bool, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(memberKey(doc, key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		value, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		g, err = grantFromRecord(doc, value)
		ok = err == nil
		return err
	})
	return g, ok, err
}
