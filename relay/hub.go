package relay

import (
	"sync"
	"sync/atomic"

	"interlude/sync/envelope"
)

// subscription is one connection's interest in one document.
//
// Delivery is notify-and-pull: an append only marks the document's
// subscriptions pending and wakes their connections, and each connection's
// writer then reads the log from Badger after its own position. A slow
// reader therefore costs no memory on the relay, and the backlog and live
// entries travel the same path in cursor order.
type subscription struct {
	doc        envelope.DocID
	includeOwn bool
	// wake is the owning connection's wake channel (capacity 1).
	wake chan struct{}
	// pending is set when the log may have entries after pos.
	pending atomic.Bool

	// pos is the cursor of the last entry sent or skipped, and caughtUp
	// is set once CaughtUp has been sent. The connection's writer
	// goroutine owns both.
	pos uint64
	// entryPos is the index of the next membership entry to send. The
	// writer goroutine owns it, like pos.
	entryPos uint64
	caughtUp bool
}

// hub finds the subscriptions of a document when an envelope is appended.
type hub struct {
	mu   sync.Mutex
	subs map[envelope.DocID]map[*subscription]struct{} // guarded by mu
}

func (h *hub) add(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = make(map[envelope.DocID]map[*subscription]struct{})
	}
	set := h.subs[s.doc]
	if set == nil {
		set = make(map[*subscription]struct{})
		h.subs[s.doc] = set
	}
	set[s] = struct{}{}
}

func (h *hub) remove(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set := h.subs[s.doc]
	delete(set, s)
	if len(set) == 0 {
		delete(h.subs, s.doc)
	}
}

// notify marks every subscription of doc pending and wakes its connection.
// It does not wait for any connection: when a wake channel is full, that
// connection is already awake and will see the flag.
func (h *hub) notify(doc envelope.DocID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[doc] {
		s.pending.Store(true)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}
