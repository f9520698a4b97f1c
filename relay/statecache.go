package relay

import (
	"container/list"
	"log/slog"
	"sync"

	"interlude/sync/envelope"
	"interlude/sync/membership"
)

// DefaultMembershipCacheSize is the number of documents whose membership
// state a relay keeps in memory when Config.MembershipCacheSize is 0.
const DefaultMembershipCacheSize = 4096

// stateCache keeps the membership states of the most recently used
// documents, up to maxDocs of them, and evicts the least recently used one
// to make room. An evicted state costs only time: the next use rebuilds it
// from the membership log in Badger.
//
// Correctness rests on one rule that the store keeps: load and put run
// only while the caller holds the document's lock (store.locks), with a
// state that matches the log committed in Badger. Appends hold the same lock from
// reading the state to caching the next one, so no append can commit
// between a rebuild's read of the log and its put. That is why evicting
// any state at any time is safe.
type stateCache struct {
	log     *slog.Logger
	maxDocs int

	mu sync.Mutex
	// lru holds one *cachedState per document, the most recently used
	// at the front.
	lru   *list.List                       // guarded by mu
	items map[envelope.DocID]*list.Element // guarded by mu
	stats cacheStats                       // guarded by mu
}

type cachedState struct {
	doc   envelope.DocID
	state *membership.State
}

// cacheStats counts the cache's work since the relay started.
type cacheStats struct {
	// Hits counts uses of a cached state, and Misses uses that had to
	// rebuild the state.
	Hits, Misses uint64
	Evictions    uint64
	// Peak is the largest number of states the cache has held at once.
	Peak int
}

func newStateCache(maxDocs int, log *slog.Logger) *stateCache {
	return &stateCache{
		log:     log,
		maxDocs: maxDocs,
		lru:     list.New(),
		items:   make(map[envelope.DocID]*list.Element),
	}
}

// get returns doc's cached state and marks it as the most recently used.
// It counts only hits, because a caller that misses goes on to load,
// which counts the use.
func (c *stateCache) get(doc envelope.DocID) (*membership.State, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[doc]
	if !ok {
		return nil, false
	}
	c.stats.Hits++
	c.lru.MoveToFront(el)
	return el.Value.(*cachedState).state, true
}

// load returns doc's cached state, or else the state that rebuild returns
// for doc, which it caches. The caller must hold doc's lock. rebuild runs
// without the cache's mutex, so other documents are served meanwhile.
func (c *stateCache) load(doc envelope.DocID, rebuild func(envelope.DocID) (*membership.State, error)) (*membership.State, error) {
	if st, ok := c.get(doc); ok {
		return st, nil
	}
	c.mu.Lock()
	c.stats.Misses++
	c.mu.Unlock()
	st, err := rebuild(doc)
	if err != nil {
		return nil, err
	}
	c.put(doc, st)
	return st, nil
}

// put caches st as doc's state, replacing any older one, and evicts the
// least recently used states beyond maxDocs. The caller must hold doc's lock.
func (c *stateCache) put(doc envelope.DocID, st *membership.State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[doc]; ok {
		el.Value.(*cachedState).state = st
		c.lru.MoveToFront(el)
		return
	}
	c.items[doc] = c.lru.PushFront(&cachedState{doc: doc, state: st})
	for c.lru.Len() > c.maxDocs {
		oldest := c.lru.Remove(c.lru.Back()).(*cachedState)
		delete(c.items, oldest.doc)
		c.stats.Evictions++
		c.log.Debug("membership state evicted from cache", "doc", oldest.doc.String(), "cached", c.lru.Len(), "max", c.maxDocs)
	}
	c.stats.Peak = max(c.stats.Peak, c.lru.Len())
}

// remove drops doc's state, so the next use rebuilds it from Badger.
func (c *stateCache) remove(doc envelope.DocID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[doc]; ok {
		c.lru.Remove(el)
		delete(c.items, doc)
	}
}

// len returns the number of cached states.
func (c *stateCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *stateCache) statistics() cacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}
