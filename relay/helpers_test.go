package relay_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"golang.org/x/crypto/nacl/box"

	"interlude/relay"
	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// readGuard bounds every wait for a frame, so that a relay that never
// replies fails the test instead of hanging it. It is not a speed check.
const readGuard = 10 * time.Second

// testLogger writes the relay's logs to the test log, where they show up
// only when a test fails or runs with -v. Benchmarks discard them, because
// a benchmark's log is always printed.
func testLogger(t testing.TB) *slog.Logger {
	if _, ok := t.(*testing.B); ok {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// testRelay is a relay serving on 127.0.0.1 for one test.
type testRelay struct {
	t       testing.TB
	srv     *relay.Server
	addr    string
	dataDir string
	served  chan error
	stopped bool
}

func startRelay(t testing.TB) *testRelay {
	return startRelayWith(t, t.TempDir(), nil)
}

func startRelayWith(t testing.TB, dataDir string, web fs.FS) *testRelay {
	t.Helper()
	return startRelayConfig(t, relay.Config{DataDir: dataDir, Web: web})
}

// startRelayConfig starts a relay with cfg, logging to the test log.
func startRelayConfig(t testing.TB, cfg relay.Config) *testRelay {
	t.Helper()
	cfg.Logger = testLogger(t)
	dataDir := cfg.DataDir
	srv, err := relay.Open(cfg)
	if err != nil {
		t.Fatalf("Open(%q): %v", dataDir, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Shutdown(context.Background())
		t.Fatalf("listen on 127.0.0.1:0: %v", err)
	}
	r := &testRelay{t: t, srv: srv, addr: ln.Addr().String(), dataDir: dataDir, served: make(chan error, 1)}
	go func() { r.served <- srv.Serve(ln) }()
	t.Cleanup(r.stop)
	return r
}

// stop shuts the relay down and checks that Serve returned as documented.
func (r *testRelay) stop() {
	if r.stopped {
		return
	}
	r.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), readGuard)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		r.t.Errorf("Shutdown: %v", err)
	}
	if err := <-r.served; !errors.Is(err, http.ErrServerClosed) {
		r.t.Errorf("Serve returned %v after Shutdown, want http.ErrServerClosed", err)
	}
}

func (r *testRelay) url(path string) string { return "http://" + r.addr + path }

// device is a test device's signing key and the hashes of the envelopes
// it sealed, so each new envelope names its predecessor.
type device struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
	// boxPub receives the document keys the membership log seals.
	boxPub [32]byte
	// sealedHashes maps a document and sequence number to the hash of the
	// envelope last sealed with them. Copies of a device share it.
	sealedHashes map[chainPos]envelope.Hash
	mu           *sync.Mutex // guards sealedHashes
}

type chainPos struct {
	doc envelope.DocID
	seq uint64
}

func newDevice(t testing.TB) device {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	boxPub, _, err := box.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return device{pub: pub, priv: priv, boxPub: *boxPub, sealedHashes: map[chainPos]envelope.Hash{}, mu: new(sync.Mutex)}
}

// header returns the header of d's envelope seq in doc, chained to the
// envelope d sealed last for seq-1. Without one, Prev is a random hash,
// which the relay rejects as a broken chain.
func (d device) header(t testing.TB, doc envelope.DocID, seq uint64) envelope.Header {
	t.Helper()
	h := envelope.Header{Kind: envelope.KindUpdate, Doc: doc, Seq: seq}
	if l := testLogs.get(doc); l != nil {
		h.MembershipHead, h.Epoch = envelope.Hash(l.state.Head()), l.state.Epoch()
	}
	if seq > 1 {
		d.mu.Lock()
		prev, ok := d.sealedHashes[chainPos{doc, seq - 1}]
		d.mu.Unlock()
		if !ok {
			rand.Read(prev[:])
		}
		h.Prev = prev
	}
	return h
}

// seal seals plaintext as d's envelope seq of doc and remembers its hash.
func (d device) seal(t testing.TB, h envelope.Header, key *[envelope.KeySize]byte, plaintext []byte) []byte {
	t.Helper()
	env, err := envelope.Seal(h, key, d.priv, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	b, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	d.sealedHashes[chainPos{h.Doc, h.Seq}] = env.Hash()
	d.mu.Unlock()
	return b
}

func newDocID(t testing.TB) envelope.DocID {
	t.Helper()
	doc, err := envelope.NewDocID()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// sealed returns an envelope of doc written by d with sequence number seq,
// chained to the envelope d sealed last for seq-1.
func (d device) sealed(t testing.TB, doc envelope.DocID, seq uint64) []byte {
	t.Helper()
	var key [envelope.KeySize]byte
	rand.Read(key[:])
	return d.seal(t, d.header(t, doc, seq), &key, fmt.Appendf(nil, "update %d", seq))
}

// client is a test client speaking wire over gorilla/websocket.
type client struct {
	t       testing.TB
	ws      *websocket.Conn
	dev     device
	hello   *wire.Hello
	lastRef uint64
	// shared counts the Shared notices read, which recv skips because
	// they come unasked between replies.
	shared int
}

// dial connects to the relay and reads its Hello, without authenticating.
func dial(t testing.TB, r *testRelay, dev device) *client {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+r.addr+"/v1/sync", nil)
	if err != nil {
		t.Fatalf("dial relay at %s: %v", r.addr, err)
	}
	t.Cleanup(func() { ws.Close() })
	c := &client{t: t, ws: ws, dev: dev}
	hello, ok := c.recv().(*wire.Hello)
	if !ok {
		t.Fatal("first message from the relay is not Hello")
	}
	c.hello = hello
	return c
}

// connect dials and authenticates as dev.
func connect(t testing.TB, r *testRelay, dev device) *client {
	t.Helper()
	c := dial(t, r, dev)
	c.send(c.auth(wire.Version, c.hello.Relay))
	if _, ok := c.recv().(*wire.Welcome); !ok {
		t.Fatal("relay did not answer a valid Auth with Welcome")
	}
	return c
}

// auth returns an Auth signed for relay host name relayHost.
func (c *client) auth(version int, relayHost string) *wire.Auth {
	sig := ed25519.Sign(c.dev.priv, wire.AuthMessage(relayHost, c.hello.Challenge))
	return &wire.Auth{Version: version, Device: c.dev.pub, Signature: sig}
}

func (c *client) send(m wire.Message) {
	c.t.Helper()
	frame, err := wire.Encode(m)
	if err != nil {
		c.t.Fatalf("encode %T: %v", m, err)
	}
	c.sendFrame(frame)
}

func (c *client) sendFrame(frame []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

// recv returns the next message from the relay.
func (c *client) recv() wire.Message {
	c.t.Helper()
	m, err := c.tryRecv()
	if err != nil {
		c.t.Fatalf("read from relay: %v", err)
	}
	return m
}

func (c *client) tryRecv() (wire.Message, error) {
	for {
		c.ws.SetReadDeadline(time.Now().Add(readGuard))
		typ, frame, err := c.ws.ReadMessage()
		if err != nil {
			return nil, err
		}
		if typ != websocket.BinaryMessage {
			return nil, fmt.Errorf("frame of type %d, want binary", typ)
		}
		m, err := wire.Decode(frame)
		if _, ok := m.(*wire.Shared); ok && err == nil {
			c.shared++
			continue
		}
		return m, err
	}
}

// tryRecvRaw reads one message, Shared notices included.
func (c *client) tryRecvRaw() (wire.Message, error) {
	c.ws.SetReadDeadline(time.Now().Add(readGuard))
	typ, frame, err := c.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if typ != websocket.BinaryMessage {
		return nil, fmt.Errorf("frame of type %d, want binary", typ)
	}
	return wire.Decode(frame)
}

func (c *client) ref() uint64 {
	c.lastRef++
	return c.lastRef
}

// request sends a request carrying ref and returns the reply, failing the
// test if the reply carries another ref.
func (c *client) request(ref uint64, m wire.Message) wire.Message {
	c.t.Helper()
	c.send(m)
	reply := c.recv()
	if got := replyRef(reply); got != ref {
		c.t.Fatalf("reply %T has Ref %d, want %d", reply, got, ref)
	}
	return reply
}

func replyRef(m wire.Message) uint64 {
	switch m := m.(type) {
	case *wire.OK:
		return m.Ref
	case *wire.Ack:
		return m.Ref
	case *wire.Docs:
		return m.Ref
	case *wire.Error:
		return m.Ref
	case *wire.EntryAck:
		return m.Ref
	case *wire.Log:
		return m.Ref
	case *wire.Invite:
		return m.Ref
	case *wire.Chain:
		return m.Ref
	}
	return 0
}

// mustOK fails the test unless the reply is OK, or EntryAck for a
// membership entry.
func mustOK(t testing.TB, reply wire.Message) {
	t.Helper()
	if e, ok := reply.(*wire.Error); ok {
		t.Fatalf("reply is Error %s: %s, want OK", e.Code, e.Message)
	}
	switch reply.(type) {
	case *wire.OK, *wire.EntryAck:
	default:
		t.Fatalf("reply is %T, want OK", reply)
	}
}

// wantError fails the test unless the reply is an Error with code.
func wantError(t testing.TB, reply wire.Message, code wire.Code) *wire.Error {
	t.Helper()
	e, ok := reply.(*wire.Error)
	if !ok {
		t.Fatalf("reply is %T, want Error %s", reply, code)
	}
	if e.Code != code {
		t.Fatalf("Error code %s (%s), want %s", e.Code, e.Message, code)
	}
	return e
}

// docLog is the membership log a test built for one document, shared by
// every test device, so headers name the right head and epoch.
type docLog struct {
	entries []*membership.Entry
	state   *membership.State
	key     *[membership.KeySize]byte
	sealed  map[[32]byte][]byte // newest sealed key of each member
}

type docLogs struct {
	mu   sync.Mutex
	logs map[envelope.DocID]*docLog // guarded by mu
}

var testLogs = &docLogs{logs: map[envelope.DocID]*docLog{}}

func (l *docLogs) get(doc envelope.DocID) *docLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.logs[doc]
}

func (d device) member(role membership.Role) membership.Member {
	return membership.Member{Sign: [32]byte(d.pub), Box: d.boxPub, Role: role}
}

// appendEntry sends e and, if the relay accepts it, applies it to the
// shared log.
func (c *client) appendEntry(doc envelope.DocID, e *membership.Entry) wire.Message {
	c.t.Helper()
	ref := c.ref()
	reply := c.request(ref, &wire.AppendEntry{Ref: ref, Doc: doc[:], Entry: e.Encode()})
	if ack, ok := reply.(*wire.EntryAck); ok {
		if !membership.VerifyCountersign(c.hello.RelayKey, doc, ack.Index, e.Hash(), ack.Countersig) {
			c.t.Fatalf("countersignature of entry %d does not verify under the relay key of Hello", ack.Index)
		}
		testLogs.mu.Lock()
		l := testLogs.logs[doc]
		if l == nil || ack.Index == 0 {
			testLogs.mu.Unlock()
			return reply // applied by create
		}
		if err := l.state.Apply(e); err != nil && l.state.Len() <= e.Index {
			c.t.Errorf("relay accepted entry %d that the shared log rejects: %v", e.Index, err)
		}
		for _, k := range e.Keys {
			l.sealed[k.Member] = k.Sealed[:]
		}
		testLogs.mu.Unlock()
	}
	return reply
}

func (c *client) create(doc envelope.DocID) wire.Message {
	c.t.Helper()
	testLogs.mu.Lock()
	l := testLogs.logs[doc]
	if l == nil {
		key, err := membership.NewKey()
		if err != nil {
			c.t.Fatal(err)
		}
		e, err := membership.NewCreate(doc, c.dev.priv, c.dev.boxPub, key)
		if err != nil {
			c.t.Fatal(err)
		}
		st := &membership.State{}
		if err := st.Apply(e); err != nil {
			c.t.Fatal(err)
		}
		l = &docLog{state: st, key: key, sealed: map[[32]byte][]byte{[32]byte(c.dev.pub): e.Keys[0].Sealed[:]}}
		testLogs.logs[doc] = l
		l.entries = append(l.entries, e)
	}
	testLogs.mu.Unlock()
	first := l.entries[0]
	if first.Author != [32]byte(c.dev.pub) {
		// Another device's create of the same document: its own entry 0.
		e, err := membership.NewCreate(doc, c.dev.priv, c.dev.boxPub, l.key)
		if err != nil {
			c.t.Fatal(err)
		}
		first = e
	}
	return c.appendEntry(doc, first)
}

// addMember appends an entry that adds member as a writer.
func (c *client) addMember(doc envelope.DocID, member device) wire.Message {
	return c.addMemberAs(doc, member, membership.RoleWriter)
}

func (c *client) addMemberAs(doc envelope.DocID, member device, role membership.Role) wire.Message {
	c.t.Helper()
	l := testLogs.get(doc)
	if l == nil {
		c.t.Fatalf("document %s has no log: create it first", doc)
	}
	testLogs.mu.Lock()
	e, err := l.state.NewAdd(c.dev.priv, member.member(role), l.key)
	testLogs.mu.Unlock()
	if err != nil {
		// The test sends an entry the log rejects: sign one anyway, on
		// the log's head, for the relay to judge.
		e = &membership.Entry{Op: membership.OpAdd, Doc: doc, Index: l.state.Len(), Prev: l.state.Head(), Epoch: l.state.Epoch(), Subject: member.member(role)}
		e.Keys = []membership.SealedKey{{Member: [32]byte(member.pub)}}
		e.Sign(c.dev.priv)
	}
	return c.appendEntry(doc, e)
}

// removeMember appends an entry that removes member and rotates the key.
func (c *client) removeMember(doc envelope.DocID, member device) wire.Message {
	c.t.Helper()
	l := testLogs.get(doc)
	testLogs.mu.Lock()
	e, newKey, err := l.state.NewRemove(c.dev.priv, [32]byte(member.pub), l.key)
	testLogs.mu.Unlock()
	if err != nil {
		c.t.Fatalf("build removal: %v", err)
	}
	reply := c.appendEntry(doc, e)
	if _, ok := reply.(*wire.EntryAck); ok {
		testLogs.mu.Lock()
		l.key = newKey
		testLogs.mu.Unlock()
	}
	return reply
}

func (c *client) push(doc envelope.DocID, env []byte) wire.Message {
	ref := c.ref()
	return c.request(ref, &wire.Push{Ref: ref, Doc: doc[:], Envelope: env})
}

// mustPush pushes env and returns the acknowledged cursor.
func (c *client) mustPush(doc envelope.DocID, env []byte) uint64 {
	c.t.Helper()
	reply := c.push(doc, env)
	ack, ok := reply.(*wire.Ack)
	if !ok {
		if e, isErr := reply.(*wire.Error); isErr {
			c.t.Fatalf("push rejected: %s: %s", e.Code, e.Message)
		}
		c.t.Fatalf("push reply is %T, want Ack", reply)
	}
	if string(ack.Doc) != string(doc[:]) {
		c.t.Fatalf("Ack names document %x, want %s", ack.Doc, doc)
	}
	return ack.Cursor
}

func (c *client) subscribe(doc envelope.DocID, after uint64, includeOwn bool) wire.Message {
	ref := c.ref()
	return c.request(ref, &wire.Subscribe{Ref: ref, Doc: doc[:], After: after, IncludeOwn: includeOwn})
}

// sealedKeyFor returns the newest document key the shared log sealed to d.
func sealedKeyFor(d device, doc envelope.DocID) []byte {
	l := testLogs.get(doc)
	if l == nil {
		return nil
	}
	testLogs.mu.Lock()
	defer testLogs.mu.Unlock()
	return l.sealed[[32]byte(d.pub)]
}

// delivery is one Deliver as a test compares it.
type delivery struct {
	Cursor   uint64
	Envelope string
}

// readUntilCaughtUp collects the Deliver messages of doc up to CaughtUp
// and returns them with CaughtUp's cursor.
func (c *client) readUntilCaughtUp(doc envelope.DocID) ([]delivery, uint64) {
	c.t.Helper()
	var got []delivery
	for {
		switch m := c.recv().(type) {
		case *wire.Deliver:
			if string(m.Doc) != string(doc[:]) {
				c.t.Fatalf("Deliver for document %x, want %s", m.Doc, doc)
			}
			if m.Entry != nil {
				continue // membership entries are checked on their own
			}
			got = append(got, delivery{m.Cursor, string(m.Envelope)})
		case *wire.CaughtUp:
			if string(m.Doc) != string(doc[:]) {
				c.t.Fatalf("CaughtUp for document %x, want %s", m.Doc, doc)
			}
			return got, m.Cursor
		default:
			c.t.Fatalf("got %T while waiting for CaughtUp", m)
		}
	}
}

// readDeliveries reads exactly n Deliver messages of doc.
func (c *client) readDeliveries(doc envelope.DocID, n int) []delivery {
	c.t.Helper()
	var got []delivery
	for len(got) < n {
		m, ok := c.recv().(*wire.Deliver)
		if !ok {
			c.t.Fatalf("got another message after %d of %d deliveries", len(got), n)
		}
		if string(m.Doc) != string(doc[:]) {
			c.t.Fatalf("Deliver for document %x, want %s", m.Doc, doc)
		}
		if m.Entry != nil {
			continue // membership entries are checked on their own
		}
		got = append(got, delivery{m.Cursor, string(m.Envelope)})
	}
	return got
}

// expectClosed reads until the relay closes the connection and fails if
// any data frame arrives first.
func (c *client) expectClosed() {
	c.t.Helper()
	m, err := c.tryRecv()
	if err == nil {
		c.t.Fatalf("got %T, want the connection closed", m)
	}
}

// listDocs sends ListDocs and returns the Docs reply.
func (c *client) listDocs() *wire.Docs {
	c.t.Helper()
	ref := c.ref()
	reply := c.request(ref, &wire.ListDocs{Ref: ref})
	docs, ok := reply.(*wire.Docs)
	if !ok {
		c.t.Fatalf("ListDocs answered with %T, want Docs", reply)
	}
	return docs
}

// sealedSize returns an envelope like sealed with a plaintext of size bytes.
func (d device) sealedSize(t testing.TB, doc envelope.DocID, seq uint64, size int) []byte {
	t.Helper()
	var key [envelope.KeySize]byte
	return d.seal(t, d.header(t, doc, seq), &key, make([]byte, size))
}

// checkDeliveries compares deliveries with the expected ones: same count,
// and for each the same cursor and the same envelope bytes.
func checkDeliveries(t testing.TB, label string, got, want []delivery) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d deliveries, want %d", label, len(got), len(want))
	}
	for i := range want {
		if got[i].Cursor != want[i].Cursor {
			t.Errorf("%s: delivery %d at cursor %d, want %d", label, i, got[i].Cursor, want[i].Cursor)
		}
		if got[i].Envelope != want[i].Envelope {
			t.Errorf("%s: delivery %d at cursor %d carries other bytes than the envelope pushed", label, i, got[i].Cursor)
		}
	}
}
