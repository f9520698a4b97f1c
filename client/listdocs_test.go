package client_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	gosync "sync"
	"testing"

	"interlude/sync/envelope"
	"interlude/sync/wire"
)

// pageLimit is the Limit the proxy writes into each ListDocs, so a real
// relay splits a handful of documents into several pages.
const pageLimit = 2

// listExchange is one ListDocs request and its Docs reply as the proxy
// passed them on.
type listExchange struct {
	after []byte
	// grants and more are from the reply.
	grants [][]byte
	more   bool
}

// listRecorder makes the relay page the document list by pageLimit and
// records each exchange. The client sends one ListDocs at a time, so
// each Docs reply belongs to the last request.
type listRecorder struct {
	mu        gosync.Mutex
	exchanges []listExchange // guarded by mu
}

func (r *listRecorder) toRelay(m wire.Message) []wire.Message {
	if l, ok := m.(*wire.ListDocs); ok {
		l.Limit = pageLimit
		r.mu.Lock()
		r.exchanges = append(r.exchanges, listExchange{after: bytes.Clone(l.After)})
		r.mu.Unlock()
	}
	return []wire.Message{m}
}

func (r *listRecorder) toClient(m wire.Message) []wire.Message {
	if d, ok := m.(*wire.Docs); ok {
		r.mu.Lock()
		if n := len(r.exchanges); n > 0 {
			for _, g := range d.Grants {
				r.exchanges[n-1].grants = append(r.exchanges[n-1].grants, bytes.Clone(g.Doc))
			}
			r.exchanges[n-1].more = d.More
		}
		r.mu.Unlock()
	}
	return []wire.Message{m}
}

func (r *listRecorder) recorded() []listExchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.exchanges)
}

// TestAcceptSharedPagesList shares five documents with a client and has
// the real relay send its document list two grants a page. The client
// must request each next page after the last document of the one before,
// stop at the page without More, and accept all five documents.
func TestAcceptSharedPagesList(t *testing.T) {
	h := newHarness(t)
	v, proxy := h.member()
	rec := &listRecorder{}
	proxy.set(rec.toClient, rec.toRelay)
	var shared []envelope.DocID
	for range 5 {
		shared = append(shared, h.author.createDoc(v))
	}
	slices.SortFunc(shared, func(x, y envelope.DocID) int { return bytes.Compare(x[:], y[:]) })

	h.sync(v)

	if got := v.Documents(); !slices.Equal(got, shared) {
		t.Errorf("client has documents %v, want the five shared %v", got, shared)
	}
	exchanges := rec.recorded()
	if len(exchanges) < 3 {
		t.Fatalf("client sent %d ListDocs, want at least the 3 pages of one listing", len(exchanges))
	}
	var sizes []int
	var mores []bool
	for _, e := range exchanges[:3] {
		sizes = append(sizes, len(e.grants))
		mores = append(mores, e.more)
	}
	if want := []int{2, 2, 1}; !slices.Equal(sizes, want) {
		t.Errorf("first listing came in pages of %v grants, want %v", sizes, want)
	}
	if want := []bool{true, true, false}; !slices.Equal(mores, want) {
		t.Errorf("first listing's pages have More %v, want %v", mores, want)
	}
	// A listing repeats on every pass of SyncOnce, and each must start
	// from the beginning and continue after the last grant it received.
	for i, e := range exchanges {
		var want []byte
		if i > 0 && exchanges[i-1].more && len(exchanges[i-1].grants) > 0 {
			prev := exchanges[i-1].grants
			want = prev[len(prev)-1]
		}
		if !bytes.Equal(e.after, want) {
			t.Errorf("ListDocs %d has After %x, want %x", i, e.after, want)
		}
	}
}

// TestAcceptSharedFaultyPages has the proxy break the relay's paging in
// two ways that would keep a client asking forever. The client must end
// the sync with an error that names the fault.
func TestAcceptSharedFaultyPages(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(d *wire.Docs)
		wantErr string
	}{
		{
			name: "empty page with More",
			tamper: func(d *wire.Docs) {
				d.Grants, d.More = nil, true
			},
			wantErr: "no documents but more to come",
		},
		{
			name: "grants out of order",
			tamper: func(d *wire.Docs) {
				slices.Reverse(d.Grants)
			},
			wantErr: "out of document id order",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			v, proxy := h.member()
			h.author.createDoc(v)
			h.author.createDoc(v)
			limit := func(m wire.Message) []wire.Message {
				if l, ok := m.(*wire.ListDocs); ok {
					l.Limit = pageLimit
				}
				return []wire.Message{m}
			}
			tamper := func(m wire.Message) []wire.Message {
				if d, ok := m.(*wire.Docs); ok {
					tt.tamper(d)
				}
				return []wire.Message{m}
			}
			proxy.set(tamper, limit)

			ctx, cancel := context.WithTimeout(h.ctx, hangGuard)
			defer cancel()
			err := v.SyncOnce(ctx)

			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("SyncOnce: err = %v, want one containing %q", err, tt.wantErr)
			}
			t.Logf("SyncOnce: %v", err)
		})
	}
}
