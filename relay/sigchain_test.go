package relay_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"

	"interlude/relay"
	"interlude/sync/wire"
)

func (c *client) putChain(id []byte, from uint64, entries, blobs [][]byte, writers ...device) wire.Message {
	c.t.Helper()
	ref := c.ref()
	m := &wire.PutChain{Ref: ref, ID: id, From: from, Entries: entries, Blobs: blobs}
	for _, w := range writers {
		m.Writers = append(m.Writers, w.pub)
	}
	return c.request(ref, m)
}

func (c *client) getChain(id []byte, from, blobsFrom uint64) *wire.Chain {
	c.t.Helper()
	ref := c.ref()
	reply := c.request(ref, &wire.GetChain{Ref: ref, ID: id, From: from, BlobsFrom: blobsFrom})
	ch, ok := reply.(*wire.Chain)
	if !ok {
		c.t.Fatalf("GetChain returned %T (%v), want Chain", reply, reply)
	}
	return ch
}

func chainID(t *testing.T) []byte {
	t.Helper()
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	return id
}

// chainIDOf returns the id of a chain whose first entry is first: its
// hash as package client/keyring takes it.
func chainIDOf(first []byte) []byte {
	h := sha256.Sum256(append([]byte("interlude/keyring/v1 sigchain entry hash\x00"), first...))
	return h[:]
}

func items(prefix string, n int) [][]byte {
	var out [][]byte
	for i := range n {
		out = append(out, fmt.Appendf(nil, "%s %d", prefix, i+1))
	}
	return out
}

func checkItems(t *testing.T, label string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d items %q, want %d %q", label, len(got), got, len(want), want)
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s: item %d is %q, want %q", label, i+1, got[i], want[i])
		}
	}
}

// TestSigchainAppendsInOrder stores a chain in three appends by two
// writers, and checks that only the writers the last append named may
// append, that an append must build on the whole stored chain, and that
// the chain survives a restart.
func TestSigchainAppendsInOrder(t *testing.T) {
	dir := t.TempDir()
	r := startRelayWith(t, dir, nil)
	laptop, phone, stranger := newDevice(t), newDevice(t), newDevice(t)
	a, p, s := connect(t, r, laptop), connect(t, r, phone), connect(t, r, stranger)
	id := chainIDOf(items("entry", 1)[0])
	// A new chain's id must be the hash of its first entry.
	wantError(t, a.putChain(chainID(t), 0, items("entry", 1), nil, laptop), wire.CodeForbidden)

	// A new chain must name its first writer among its writers.
	wantError(t, s.putChain(id, 0, items("entry", 1), nil, laptop), wire.CodeForbidden)
	mustOK(t, a.putChain(id, 0, items("entry", 1), items("blob", 1), laptop))
	// Appending to what the relay already holds builds on 1 entry.
	wantError(t, a.putChain(id, 0, items("entry", 1), nil, laptop), wire.CodeStaleLog)
	wantError(t, p.putChain(id, 1, [][]byte{[]byte("entry 2")}, nil, phone), wire.CodeForbidden)
	mustOK(t, a.putChain(id, 1, [][]byte{[]byte("entry 2")}, [][]byte{[]byte("blob 2")}, laptop, phone))
	// The laptop named the phone, so it may append now; the stranger may not.
	wantError(t, s.putChain(id, 2, [][]byte{[]byte("entry 3")}, nil, stranger), wire.CodeForbidden)
	wantError(t, p.putChain(id, 3, [][]byte{[]byte("entry 3")}, nil, phone), wire.CodeStaleLog)
	mustOK(t, p.putChain(id, 2, [][]byte{[]byte("entry 3")}, [][]byte{[]byte("blob 3"), []byte("blob 4")}, phone))
	// The phone's append named only itself, so the laptop lost its right.
	wantError(t, a.putChain(id, 3, [][]byte{[]byte("entry 4")}, nil, laptop), wire.CodeForbidden)

	ch := s.getChain(id, 0, 0)
	checkItems(t, "entries", ch.Entries, items("entry", 3))
	checkItems(t, "blobs", ch.Blobs, items("blob", 4))
	ch = s.getChain(id, 2, 3)
	checkItems(t, "entries after 2", ch.Entries, [][]byte{[]byte("entry 3")})
	checkItems(t, "blobs after 3", ch.Blobs, [][]byte{[]byte("blob 4")})
	if other := s.getChain(chainID(t), 0, 0); len(other.Entries)+len(other.Blobs) != 0 {
		t.Errorf("an unknown chain returned %d entries and %d blobs, want none", len(other.Entries), len(other.Blobs))
	}

	r.stop()
	r = startRelayWith(t, dir, nil)
	s = connect(t, r, stranger)
	checkItems(t, "entries after a restart", s.getChain(id, 0, 0).Entries, items("entry", 3))
	p = connect(t, r, phone)
	mustOK(t, p.putChain(id, 3, [][]byte{[]byte("entry 4")}, nil, phone))

	var chains int
	err := r.srv.ReadAudit(func(rec relay.AuditRecord) error {
		if rec.Event == relay.AuditChain && bytes.Equal(rec.Doc, id) {
			chains++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if chains != 4 {
		t.Errorf("audit log holds %d sigchain appends, want 4", chains)
	}
}

// TestSigchainRejectsBadPuts sends malformed and oversized appends and
// checks that each names its fault and stores nothing.
func TestSigchainRejectsBadPuts(t *testing.T) {
	r := startRelay(t)
	dev := newDevice(t)
	c := connect(t, r, dev)
	id := chainIDOf(items("entry", 1)[0])
	oneEntry := items("entry", 1)
	for _, tc := range []struct {
		name string
		m    *wire.PutChain
		code wire.Code
	}{
		{"short id", &wire.PutChain{ID: id[:16], Entries: oneEntry, Writers: [][]byte{dev.pub}}, wire.CodeMalformed},
		{"nothing to append", &wire.PutChain{ID: id, Writers: [][]byte{dev.pub}}, wire.CodeMalformed},
		{"no writers", &wire.PutChain{ID: id, Entries: oneEntry}, wire.CodeMalformed},
		{"short writer", &wire.PutChain{ID: id, Entries: oneEntry, Writers: [][]byte{dev.pub[:31]}}, wire.CodeMalformed},
		{"large entry", &wire.PutChain{ID: id, Entries: [][]byte{make([]byte, 513)}, Writers: [][]byte{dev.pub}}, wire.CodeTooLarge},
		{"empty entry", &wire.PutChain{ID: id, Entries: [][]byte{{}}, Writers: [][]byte{dev.pub}}, wire.CodeTooLarge},
		{"large blob", &wire.PutChain{ID: id, Blobs: [][]byte{make([]byte, 257)}, Writers: [][]byte{dev.pub}}, wire.CodeTooLarge},
		{"too many entries", &wire.PutChain{ID: id, Entries: items("entry", 257), Writers: [][]byte{dev.pub}}, wire.CodeMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := c.ref()
			tc.m.Ref = ref
			e := wantError(t, c.request(ref, tc.m), tc.code)
			if e.Message == "" {
				t.Error("the error has no message")
			}
		})
	}
	if ch := c.getChain(id, 0, 0); len(ch.Entries)+len(ch.Blobs) != 0 {
		t.Errorf("rejected appends stored %d entries and %d blobs", len(ch.Entries), len(ch.Blobs))
	}

	// A chain is bounded: 16 appends of 256 fill it, and the next fails
	// without storing anything.
	for i := range 16 {
		mustOK(t, c.putChain(id, uint64(i*256), items("entry", 256), nil, dev))
	}
	wantError(t, c.putChain(id, 4096, items("more", 1), nil, dev), wire.CodeTooLarge)
	if got := len(c.getChain(id, 4090, 0).Entries); got != 6 {
		t.Errorf("a full chain returned %d entries after 4090, want 6", got)
	}
}
