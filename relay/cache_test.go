package relay_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"interlude/relay"
	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// changeRole appends an entry that gives member role.
func (c *client) changeRole(doc envelope.DocID, member device, role membership.Role) wire.Message {
	c.t.Helper()
	l := testLogs.get(doc)
	testLogs.mu.Lock()
	e, err := l.state.NewChangeRole(c.dev.priv, [32]byte(member.pub), role)
	testLogs.mu.Unlock()
	if err != nil {
		c.t.Fatalf("build role change: %v", err)
	}
	return c.appendEntry(doc, e)
}

// TestMembershipCacheBounded runs five documents through a relay that
// caches the membership state of two, so states are evicted and rebuilt
// while other goroutines append to the same documents. Every push by
// alice names the newest membership head, which the relay accepts only
// if its state holds the newest entry.
func TestMembershipCacheBounded(t *testing.T) {
	r := startRelayConfig(t, relay.Config{DataDir: t.TempDir(), MembershipCacheSize: 2})
	alice, bob, carol, dave := newDevice(t), newDevice(t), newDevice(t), newDevice(t)
	docs := make([]envelope.DocID, 5)
	for i := range docs {
		docs[i] = newDocID(t)
	}

	t.Run("interleaved", func(t *testing.T) {
		for i, doc := range docs {
			t.Run(fmt.Sprintf("doc%d", i), func(t *testing.T) {
				t.Parallel()
				exerciseDocument(t, r, doc, alice, bob, carol)
			})
		}
	})
	if t.Failed() {
		return
	}

	// The five documents are used in turn with room for two states, so
	// each document's state has been evicted by the time it is used again.
	a := connect(t, r, alice)
	for _, doc := range docs {
		mustOK(t, a.addMember(doc, dave))
	}
	for _, doc := range docs {
		e := wantError(t, a.addMember(doc, dave), wire.CodeBadEntry)
		t.Logf("second add of dave to %s rejected: %s", doc, e.Message)
	}
	for _, doc := range docs {
		a.mustPush(doc, alice.sealed(t, doc, 7))
	}
	for _, doc := range docs {
		checkFullLog(t, a, doc)
	}

	cached, stats := relay.MembershipCache(r.srv)
	t.Logf("membership cache after the test: %d cached, %+v", cached, stats)
	if cached > 2 {
		t.Errorf("cache holds %d membership states, want at most 2", cached)
	}
	if stats.Peak > 2 {
		t.Errorf("cache held %d membership states at its peak, want at most 2", stats.Peak)
	}
	if stats.Evictions == 0 {
		t.Error("cache evicted no state while five documents shared room for two")
	}
}

// exerciseDocument creates doc and interleaves alice's and bob's pushes
// with membership changes while carol is subscribed, then checks what
// carol received.
func exerciseDocument(t *testing.T, r *testRelay, doc envelope.DocID, alice, bob, carol device) {
	a := connect(t, r, alice)
	b := connect(t, r, bob)
	mustOK(t, a.create(doc))
	mustOK(t, a.addMember(doc, bob))
	mustOK(t, a.addMember(doc, carol))

	c := connect(t, r, carol)
	mustOK(t, c.subscribe(doc, 0, false))

	var want []delivery
	pushed := func(env []byte, cursor uint64) {
		want = append(want, delivery{cursor, string(env)})
	}
	// bob's role changes between writer and reader. While it is a
	// reader, which only the newest entry records, its pushes are rejected.
	bobWrites, bobSeq := true, uint64(1)
	for seq := uint64(1); seq <= 5; seq++ {
		env := alice.sealed(t, doc, seq)
		pushed(env, a.mustPush(doc, env))
		if bobWrites {
			env = bob.sealed(t, doc, bobSeq)
			pushed(env, b.mustPush(doc, env))
			bobSeq++
		}
		switch seq {
		case 2, 4:
			mustOK(t, a.changeRole(doc, bob, membership.RoleReader))
			bobWrites = false
		case 3:
			mustOK(t, a.changeRole(doc, bob, membership.RoleWriter))
			bobWrites = true
		}
		if !bobWrites {
			wantError(t, b.push(doc, bob.sealed(t, doc, bobSeq)), wire.CodeForbidden)
		}
	}
	env := alice.sealed(t, doc, 6)
	pushed(env, a.mustPush(doc, env))

	got, _ := c.readUntilCaughtUp(doc)
	got = append(got, c.readDeliveries(doc, len(want)-len(got))...)
	checkDeliveries(t, "carol's subscription", got, want)
}

// checkFullLog fetches doc's membership log from the relay and checks
// that it is the log the test built.
func checkFullLog(t *testing.T, c *client, doc envelope.DocID) {
	t.Helper()
	lg, ok := c.getLog(doc, 0).(*wire.Log)
	if !ok {
		t.Fatalf("GetLog of %s not answered with Log", doc)
	}
	st := &membership.State{}
	for i, le := range lg.Entries {
		e, err := membership.Decode(le.Entry)
		if err != nil {
			t.Fatalf("document %s entry %d: %v", doc, i, err)
		}
		if err := st.Apply(e); err != nil {
			t.Fatalf("document %s entry %d does not apply: %v", doc, i, err)
		}
	}
	l := testLogs.get(doc)
	testLogs.mu.Lock()
	wantLen, wantHead := l.state.Len(), l.state.Head()
	testLogs.mu.Unlock()
	if st.Len() != wantLen {
		t.Errorf("relay's log of %s has %d entries, want %d", doc, st.Len(), wantLen)
	}
	if st.Head() != wantHead {
		t.Errorf("relay's log of %s has head %s, want %s", doc, st.Head(), wantHead)
	}
}

func TestOpenRejectsNegativeCacheSize(t *testing.T) {
	_, err := relay.Open(relay.Config{DataDir: t.TempDir(), MembershipCacheSize: -1})
	if err == nil {
		t.Fatal("Open with MembershipCacheSize -1 succeeded, want an error")
	}
	t.Logf("Open with MembershipCacheSize -1: %v", err)
}

// TestGetLogPagesLongLog builds a membership log larger than one Log
// reply: 1000 members, then removals that each seal the new key to every
// remaining member, about 110 KB an entry. Paging through it with GetLog
// as the client does must return every entry once, in order.
func TestGetLogPagesLongLog(t *testing.T) {
	r := startRelay(t)
	alice := newDevice(t)
	a := connect(t, r, alice)
	doc := newDocID(t)
	mustOK(t, a.create(doc))

	members := make([]device, 999)
	for i := range members {
		members[i] = newDevice(t)
		mustOK(t, a.addMember(doc, members[i]))
	}
	const removals = 30
	for _, m := range members[:removals] {
		mustOK(t, a.removeMember(doc, m))
	}

	st := &membership.State{}
	from, pages, total := uint64(0), 0, 0
	for {
		lg, ok := a.getLog(doc, from).(*wire.Log)
		if !ok {
			t.Fatalf("GetLog from %d not answered with Log", from)
		}
		pages++
		size := 0
		for i, le := range lg.Entries {
			index := from + uint64(i)
			e, err := membership.Decode(le.Entry)
			if err != nil {
				t.Fatalf("entry %d: %v", index, err)
			}
			if !membership.VerifyCountersign(a.hello.RelayKey, doc, index, e.Hash(), le.Countersig) {
				t.Errorf("entry %d: countersignature does not verify", index)
			}
			// Apply rejects an entry that is not the next one, so a
			// repeated, missing or reordered entry fails here.
			if err := st.Apply(e); err != nil {
				t.Fatalf("entry %d on page %d does not apply: %v", index, pages, err)
			}
			size += len(le.Entry) + len(le.Countersig)
		}
		total += size
		if len(lg.Entries) > 1 && size > relay.MaxLogReply {
			t.Errorf("page %d has %d entries of %d bytes, more than the maximum of %d", pages, len(lg.Entries), size, relay.MaxLogReply)
		}
		if !lg.More {
			break
		}
		if len(lg.Entries) == 0 {
			t.Fatalf("GetLog from %d returned no entries with More set", from)
		}
		from += uint64(len(lg.Entries))
	}
	t.Logf("log of %d entries and %d bytes came in %d pages", st.Len(), total, pages)

	if pages < 2 {
		t.Fatalf("log of %d bytes came in %d page, want at least 2 pages of at most %d bytes", total, pages, relay.MaxLogReply)
	}
	if want := uint64(1 + len(members) + removals); st.Len() != want {
		t.Errorf("paged log has %d entries, want %d", st.Len(), want)
	}
	if want := testLogs.get(doc).state.Head(); st.Head() != want {
		t.Errorf("paged log has head %s, want %s", st.Head(), want)
	}

	lg, ok := a.getLog(doc, st.Len()).(*wire.Log)
	if !ok {
		t.Fatal("GetLog from the end not answered with Log")
	}
	if len(lg.Entries) != 0 || lg.More {
		t.Errorf("GetLog from the end returned %d entries, More %v, want none and false", len(lg.Entries), lg.More)
	}
}

// TestStrangerLeavesCacheAlone requests the membership logs of documents
// that do not exist. The relay must reject each without caching a state,
// so such requests cannot push real documents out of the cache.
func TestStrangerLeavesCacheAlone(t *testing.T) {
	r := startRelayConfig(t, relay.Config{DataDir: t.TempDir(), MembershipCacheSize: 2})
	doc, _ := sharedDoc(t, r, newDevice(t))
	_, before := relay.MembershipCache(r.srv)

	stranger := connect(t, r, newDevice(t))
	for range 5 {
		ref := stranger.ref()
		wantError(t, stranger.request(ref, &wire.GetLog{Ref: ref, Doc: bytes.Repeat([]byte{byte(ref)}, 16)}), wire.CodeNotMember)
	}
	ref := stranger.ref()
	wantError(t, stranger.request(ref, &wire.GetLog{Ref: ref, Doc: doc[:]}), wire.CodeNotMember)
	if _, after := relay.MembershipCache(r.srv); after.Evictions != before.Evictions {
		t.Errorf("a stranger's requests evicted %d membership states", after.Evictions-before.Evictions)
	}
}

// TestStrangerAppendLearnsNothing sends membership entries from a device
// that is no member: for documents that do not exist and for a real one,
// each must get not_member, without the log's length, and none may evict
// a cached state.
func TestStrangerAppendLearnsNothing(t *testing.T) {
	r := startRelayConfig(t, relay.Config{DataDir: t.TempDir(), MembershipCacheSize: 2})
	alice, stranger := newDevice(t), newDevice(t)
	doc, _ := sharedDoc(t, r, alice)
	_, before := relay.MembershipCache(r.srv)

	s := connect(t, r, stranger)
	for i := range 5 {
		other := newDocID(t)
		e := &membership.Entry{Op: membership.OpAdd, Doc: other, Index: uint64(i + 1), Epoch: 1, Subject: stranger.member(membership.RoleWriter)}
		e.Sign(stranger.priv)
		wantError(t, s.appendEntry(other, e), wire.CodeNotMember)
	}
	e := &membership.Entry{Op: membership.OpAdd, Doc: doc, Index: 7, Epoch: 1, Subject: stranger.member(membership.RoleWriter)}
	e.Sign(stranger.priv)
	if reply := wantError(t, s.appendEntry(doc, e), wire.CodeNotMember); strings.Contains(reply.Message, "length") || strings.Contains(reply.Message, "head") {
		t.Errorf("a stranger's append to a real document was told %q", reply.Message)
	}
	if _, after := relay.MembershipCache(r.srv); after.Evictions != before.Evictions {
		t.Errorf("a stranger's appends evicted %d membership states", after.Evictions-before.Evictions)
	}
}
