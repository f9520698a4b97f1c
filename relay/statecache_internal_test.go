package relay

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"

	"interlude/sync/envelope"
	"interlude/sync/membership"
)

func TestStateCacheEvictsLeastRecentlyUsed(t *testing.T) {
	c := newStateCache(2, slog.New(slog.DiscardHandler))
	a, b, d := envelope.DocID{1}, envelope.DocID{2}, envelope.DocID{3}
	stateA, stateB, stateD := &membership.State{}, &membership.State{}, &membership.State{}
	c.put(a, stateA)
	c.put(b, stateB)
	if st, ok := c.get(a); !ok || st != stateA {
		t.Fatalf("get(a) = %p, %v, want the state put for a", st, ok)
	}
	c.put(d, stateD) // b is now the least recently used

	if _, ok := c.get(b); ok {
		t.Error("b is still cached after a third document took its place")
	}
	if st, ok := c.get(a); !ok || st != stateA {
		t.Error("a, used after b, was evicted in its place")
	}
	if st, ok := c.get(d); !ok || st != stateD {
		t.Error("d, the newest document, is not cached")
	}
	if n := c.len(); n != 2 {
		t.Errorf("cache holds %d states, want 2", n)
	}
	stats := c.statistics()
	if stats.Evictions != 1 {
		t.Errorf("%d evictions, want 1", stats.Evictions)
	}
	if stats.Peak != 2 {
		t.Errorf("peak of %d states, want 2", stats.Peak)
	}
}

func TestStateCacheLoadRebuildsOnlyMisses(t *testing.T) {
	c := newStateCache(1, slog.New(slog.DiscardHandler))
	a, b := envelope.DocID{1}, envelope.DocID{2}
	rebuilds := 0
	rebuild := func(envelope.DocID) (*membership.State, error) {
		rebuilds++
		return &membership.State{}, nil
	}

	first, err := c.load(a, rebuild)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.load(a, rebuild)
	if err != nil {
		t.Fatal(err)
	}
	if again != first || rebuilds != 1 {
		t.Errorf("second load of a cached state rebuilt it: %d rebuilds, same state %v", rebuilds, again == first)
	}

	if _, err := c.load(b, rebuild); err != nil { // evicts a
		t.Fatal(err)
	}
	if _, err := c.load(a, rebuild); err != nil {
		t.Fatal(err)
	}
	if rebuilds != 3 {
		t.Errorf("%d rebuilds after a was evicted and loaded again, want 3", rebuilds)
	}

	failed := errors.New("read failed")
	if _, err := c.load(envelope.DocID{3}, func(envelope.DocID) (*membership.State, error) { return nil, failed }); !errors.Is(err, failed) {
		t.Errorf("load with a failing rebuild returned %v, want the rebuild's error", err)
	}
	if _, ok := c.get(envelope.DocID{3}); ok {
		t.Error("a failed rebuild left a state in the cache")
	}
	stats := c.statistics()
	if stats.Hits != 1 || stats.Misses != 4 {
		t.Errorf("stats %+v, want 1 hit and 4 misses", stats)
	}
}

// TestRebuildDuringAppendKeepsEntry pauses the rebuild of an evicted
// state after it read the log, lets an append to the same document run,
// evicts the document again and then lets the rebuild finish. The cached
// state must still hold the appended entry: either the append waited for
// the rebuild, or the rebuild saw the entry.
func TestRebuildDuringAppendKeepsEntry(t *testing.T) {
	discard := slog.New(slog.DiscardHandler)
	s, err := openStore(t.TempDir(), nil, 1, discard, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()

	adminPub, admin, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	author := deviceKey(adminPub)
	key, err := membership.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	create := func(doc envelope.DocID) *membership.Entry {
		e, err := membership.NewCreate(doc, admin, [32]byte{1}, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.appendMember(doc, []deviceKey{author}, e.Encode()); err != nil {
			t.Fatalf("append create entry of %s: %v", doc, err)
		}
		return e
	}
	doc, other := envelope.DocID{1}, envelope.DocID{2}
	first := create(doc)
	create(other) // evicts doc's state from the cache of one
	local := &membership.State{}
	if err := local.Apply(first); err != nil {
		t.Fatal(err)
	}
	add, err := local.NewAdd(admin, membership.Member{Sign: [32]byte{9}, Box: [32]byte{9}, Role: membership.RoleWriter}, key)
	if err != nil {
		t.Fatal(err)
	}

	readDone, release := make(chan struct{}), make(chan struct{})
	// Only the first rebuild pauses. sync.Once would block a second
	// rebuild until the first returns, which a relay does not do.
	var paused atomic.Bool
	s.rebuildState = func(d envelope.DocID) (*membership.State, error) {
		st, err := s.rebuildMembershipState(d)
		if paused.CompareAndSwap(false, true) {
			close(readDone)
			<-release
		}
		return st, err
	}

	rebuildErr := make(chan error, 1)
	go func() {
		_, err := s.membershipState(doc)
		rebuildErr <- err
	}()
	<-readDone

	appendErr := make(chan error, 1)
	go func() {
		_, _, _, err := s.appendMember(doc, []deviceKey{author}, add.Encode())
		appendErr <- err
	}()
	// Go on once the append has finished or waits for the document's
	// lock, which the paused rebuild may hold.
	appended := false
	for !appended && lockUsers(s, doc) < 2 {
		select {
		case err := <-appendErr:
			if err != nil {
				t.Fatalf("append during the rebuild: %v", err)
			}
			appended = true
		default:
			runtime.Gosched()
		}
	}
	s.states.remove(doc) // an eviction in this window must not matter
	close(release)

	if err := <-rebuildErr; err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if !appended {
		if err := <-appendErr; err != nil {
			t.Fatalf("append after the rebuild: %v", err)
		}
	}
	st, err := s.membershipState(doc)
	if err != nil {
		t.Fatal(err)
	}
	if st.Len() != 2 || st.Head() != add.Hash() {
		t.Errorf("membership state has %d entries, head %s, want 2 entries ending in the appended one %s", st.Len(), st.Head(), add.Hash())
	}
}

// lockUsers returns the number of goroutines that hold or wait for doc's
// lock.
func lockUsers(s *store, doc envelope.DocID) int {
	s.locks.mu.Lock()
	defer s.locks.mu.Unlock()
	if d := s.locks.active[doc]; d != nil {
		return d.users
	}
	return 0
}
