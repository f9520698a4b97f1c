package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	gosync "sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/nacl/box"

	"interlude/client"
	"interlude/client/wstransport"
	"interlude/crdt"
	"interlude/internal/badgerscan"
	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// The tests in this file put a misbehaving relay between a client and a
// real relay: a proxy that passes the real relay's frames on, except
// where a test tells it to drop, reorder, replay, change or swap them.
// The relay is the party with the most power over a client's view, so
// each test checks that the client notices (a Report) and that its text
// is what the honest updates make it.
//
// The documents are written by a scripted author that seals envelopes
// itself, so a test can also make it sign two different envelopes with
// one sequence number, the raw material of a fork.

// secretMarker is in every word the scripted author writes, so the
// plaintext scan at the end of each test finds any leak.
const secretMarker = "secretword"

// hangGuard bounds each wait for the relay or a sync. It only guards
// against a hang and asserts nothing about speed.
const hangGuard = 30 * time.Second

// wireClient speaks the sync protocol directly, for the scripted author.
type wireClient struct {
	t   *testing.T
	ws  *websocket.Conn
	ref uint64
}

func dialWire(t *testing.T, addr string, priv ed25519.PrivateKey) *wireClient {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/v1/sync", nil)
	if err != nil {
		t.Fatalf("dial relay at %s: %v", addr, err)
	}
	t.Cleanup(func() { ws.Close() })
	w := &wireClient{t: t, ws: ws}
	hello, ok := w.recv().(*wire.Hello)
	if !ok {
		t.Fatal("relay did not start with Hello")
	}
	sig := ed25519.Sign(priv, wire.AuthMessage(hello.Relay, hello.Challenge))
	w.send(&wire.Auth{Version: wire.Version, Device: priv.Public().(ed25519.PublicKey), Signature: sig})
	if _, ok := w.recv().(*wire.Welcome); !ok {
		t.Fatal("relay did not accept the scripted author's Auth")
	}
	return w
}

func (w *wireClient) send(m wire.Message) {
	w.t.Helper()
	frame, err := wire.Encode(m)
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wireClient) recv() wire.Message {
	w.t.Helper()
	w.ws.SetReadDeadline(time.Now().Add(hangGuard))
	_, frame, err := w.ws.ReadMessage()
	if err != nil {
		w.t.Fatalf("read from relay: %v", err)
	}
	m, err := wire.Decode(frame)
	if err != nil {
		w.t.Fatal(err)
	}
	return m
}

// call sends a request and returns the reply, failing on an Error.
func (w *wireClient) call(m wire.Message, setRef func(uint64)) wire.Message {
	w.t.Helper()
	w.ref++
	setRef(w.ref)
	w.send(m)
	reply := w.recv()
	if e, ok := reply.(*wire.Error); ok {
		w.t.Fatalf("relay rejected %T: %s: %s", m, e.Code, e.Message)
	}
	return reply
}

// scriptedAuthor writes documents by sealing envelopes itself.
type scriptedAuthor struct {
	t    *testing.T
	priv ed25519.PrivateKey
	w    *wireClient
	docs map[envelope.DocID]*authorDoc
}

type authorDoc struct {
	key  [envelope.KeySize]byte
	crdt *crdt.Doc
	seq  uint64
	prev envelope.Hash
	// log is the document's membership log, of which the scripted
	// author is the admin.
	log *membership.State
}

func newScriptedAuthor(t *testing.T, relayAddr string) *scriptedAuthor {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &scriptedAuthor{t: t, priv: priv, w: dialWire(t, relayAddr, priv), docs: map[envelope.DocID]*authorDoc{}}
}

func (x *scriptedAuthor) key() [32]byte {
	var k [32]byte
	copy(k[:], x.priv.Public().(ed25519.PublicKey))
	return k
}

func (x *scriptedAuthor) prefix() string { k := x.key(); return hex.EncodeToString(k[:8]) }

// createDoc registers a new document and shares it with members.
func (x *scriptedAuthor) createDoc(members ...*client.Client) envelope.DocID {
	x.t.Helper()
	doc, err := envelope.NewDocID()
	if err != nil {
		x.t.Fatal(err)
	}
	d := &authorDoc{crdt: crdt.NewDoc(crdt.ReplicaID(7)), log: &membership.State{}}
	rand.Read(d.key[:])
	x.docs[doc] = d
	boxPub, _, err := box.GenerateKey(rand.Reader)
	if err != nil {
		x.t.Fatal(err)
	}
	first, err := membership.NewCreate(doc, x.priv, *boxPub, &d.key)
	if err != nil {
		x.t.Fatal(err)
	}
	x.appendEntry(doc, first)
	for _, m := range members {
		pub := m.Identity().Public()
		add, err := d.log.NewAdd(x.priv, membership.Member{Sign: [32]byte(pub.Sign), Box: pub.Box, Role: membership.RoleWriter}, &d.key)
		if err != nil {
			x.t.Fatal(err)
		}
		x.appendEntry(doc, add)
	}
	return doc
}

// appendEntry sends a membership entry and applies it to the author's log.
func (x *scriptedAuthor) appendEntry(doc envelope.DocID, e *membership.Entry) {
	x.t.Helper()
	req := &wire.AppendEntry{Doc: doc[:], Entry: e.Encode()}
	x.w.call(req, func(r uint64) { req.Ref = r })
	if err := x.docs[doc].log.Apply(e); err != nil {
		x.t.Fatal(err)
	}
}

// edit appends text to the document's body and returns the update.
func edit(t *testing.T, doc *crdt.Doc, text string) []byte {
	t.Helper()
	body, err := doc.Text("body")
	if err != nil {
		t.Fatal(err)
	}
	if err := body.Insert(body.Len(), text); err != nil {
		t.Fatal(err)
	}
	return doc.Commit()
}

// seal seals update as the author's next envelope of doc without pushing
// it or moving the chain on.
func (x *scriptedAuthor) seal(doc envelope.DocID, update []byte) *envelope.Envelope {
	x.t.Helper()
	d := x.docs[doc]
	h := envelope.Header{Kind: envelope.KindUpdate, Doc: doc, Seq: d.seq + 1, Prev: d.prev, Epoch: d.log.Epoch(), MembershipHead: envelope.Hash(d.log.Head())}
	env, err := envelope.Seal(h, &d.key, x.priv, update)
	if err != nil {
		x.t.Fatal(err)
	}
	return env
}

// write appends text as one update, pushes it, and returns the envelope
// and the update.
func (x *scriptedAuthor) write(doc envelope.DocID, text string) (raw, update []byte) {
	x.t.Helper()
	d := x.docs[doc]
	update = edit(x.t, d.crdt, text)
	env := x.seal(doc, update)
	raw, err := env.Marshal()
	if err != nil {
		x.t.Fatal(err)
	}
	push := &wire.Push{Doc: doc[:], Envelope: raw}
	x.w.call(push, func(r uint64) { push.Ref = r })
	d.seq, d.prev = env.Header.Seq, env.Hash()
	return raw, update
}

// writeTwice signs two different envelopes with the author's next
// sequence number, each appending its own text to the same state, and
// pushes the first. A device that does this, or one whose key is used by
// two devices, gives a relay two histories to choose from.
func (x *scriptedAuthor) writeTwice(doc envelope.DocID, first, second string) (pushed, other []byte, pushedUpdate, otherUpdate []byte) {
	x.t.Helper()
	d := x.docs[doc]
	state, err := d.crdt.Save()
	if err != nil {
		x.t.Fatal(err)
	}
	twin, err := crdt.Load(state, d.crdt.Replica())
	if err != nil {
		x.t.Fatal(err)
	}
	otherUpdate = edit(x.t, twin, second)
	otherEnv := x.seal(doc, otherUpdate)
	if other, err = otherEnv.Marshal(); err != nil {
		x.t.Fatal(err)
	}
	pushed, pushedUpdate = x.write(doc, first)
	return pushed, other, pushedUpdate, otherUpdate
}

// open decrypts an envelope of doc, as a member would.
func (x *scriptedAuthor) open(doc envelope.DocID, raw []byte) []byte {
	x.t.Helper()
	env, err := envelope.Unmarshal(raw)
	if err != nil {
		x.t.Fatal(err)
	}
	update, err := env.Open(&x.docs[doc].key)
	if err != nil {
		x.t.Fatal(err)
	}
	return update
}

// tamperProxy is the misbehaving relay: a WebSocket server on loopback
// that connects each client to the real relay, passing frames through
// toClient and toRelay. It names itself to the relay with its own
// address, as the Host the client dialed, so the client's Auth verifies
// at the relay: the relay operator controls both ends.
type tamperProxy struct {
	t    *testing.T
	addr string

	mu gosync.Mutex
	// relayAddr is the relay that new connections go to.
	relayAddr string
	// toClient and toRelay return what to send on in place of a message.
	// Nil functions pass every message on.
	toClient func(m wire.Message) []wire.Message
	toRelay  func(m wire.Message) []wire.Message
	// delivered lists the envelopes passed on to the client.
	delivered [][]byte
	conns     []*websocket.Conn
}

func startProxy(t *testing.T, relayAddr string) *tamperProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tamperProxy{t: t, relayAddr: relayAddr, addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(p.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *tamperProxy) url() string { return "ws://" + p.addr + "/v1/sync" }

// set replaces the tampering functions.
func (p *tamperProxy) set(toClient, toRelay func(m wire.Message) []wire.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.toClient, p.toRelay = toClient, toRelay
}

func (p *tamperProxy) deliveredEnvelopes() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.delivered)
}

var proxyUpgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (p *tamperProxy) serve(w http.ResponseWriter, r *http.Request) {
	clientWS, err := proxyUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	p.mu.Lock()
	relayAddr := p.relayAddr
	p.mu.Unlock()
	relayWS, _, err := websocket.DefaultDialer.Dial("ws://"+relayAddr+"/v1/sync", http.Header{"Host": {r.Host}})
	if err != nil {
		p.t.Errorf("proxy: dial relay: %v", err)
		clientWS.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, clientWS, relayWS)
	p.mu.Unlock()
	go p.pump(relayWS, clientWS, true)
	p.pump(clientWS, relayWS, false)
}

// pump passes frames from one side to the other until either closes.
func (p *tamperProxy) pump(from, to *websocket.Conn, toClient bool) {
	defer to.Close()
	defer from.Close()
	for {
		_, frame, err := from.ReadMessage()
		if err != nil {
			return
		}
		msg, err := wire.Decode(frame)
		if err != nil {
			if to.WriteMessage(websocket.BinaryMessage, frame) != nil {
				return
			}
			continue
		}
		p.mu.Lock()
		hook := p.toRelay
		if toClient {
			hook = p.toClient
		}
		out := []wire.Message{msg}
		if hook != nil {
			out = hook(msg)
		}
		for _, m := range out {
			if d, ok := m.(*wire.Deliver); ok && toClient && d.Entry == nil {
				p.delivered = append(p.delivered, d.Envelope)
			}
		}
		p.mu.Unlock()
		for _, m := range out {
			b, err := wire.Encode(m)
			if err != nil {
				p.t.Errorf("proxy: encode %T: %v", m, err)
				return
			}
			if to.WriteMessage(websocket.BinaryMessage, b) != nil {
				return
			}
		}
	}
}

// seqOf returns the author key and sequence number of a delivered
// envelope, or a zero key if it does not decode.
func seqOf(raw []byte) ([32]byte, uint64) {
	env, err := envelope.Unmarshal(raw)
	if err != nil {
		return [32]byte{}, 0
	}
	return env.Author, env.Seq
}

// harness is one test's relay, logs and scripted author.
type harness struct {
	t          *testing.T
	ctx        context.Context
	relay      *testRelay
	relayLogs  *lockedBuffer
	clientLogs *lockedBuffer
	author     *scriptedAuthor
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*hangGuard)
	t.Cleanup(cancel)
	h := &harness{t: t, ctx: ctx, relayLogs: &lockedBuffer{}, clientLogs: &lockedBuffer{}}
	h.relay = startRelay(t, h.relayLogs)
	h.author = newScriptedAuthor(t, h.relay.addr)
	t.Cleanup(h.checkNoPlaintext)
	return h
}

// member returns a client that reaches the relay through a new proxy.
func (h *harness) member() (*client.Client, *tamperProxy) {
	h.t.Helper()
	p := startProxy(h.t, h.relay.addr)
	return newClient(h.t, p.url(), h.clientLogs), p
}

func (h *harness) sync(c *client.Client) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, hangGuard)
	defer cancel()
	if err := c.SyncOnce(ctx); err != nil {
		h.t.Fatalf("SyncOnce: %v", err)
	}
}

// checkNoPlaintext stops the relay and scans its files and every log for
// the marker in the scripted author's words, and for the private keys and
// document keys of every client the test made, raw and in hex and base64.
func (h *harness) checkNoPlaintext() {
	h.relay.stop()
	assertNotInFiles(h.t, h.relay.dir, secretMarker)
	if bytes.Contains(h.relayLogs.Bytes(), []byte(secretMarker)) {
		h.t.Error("relay logs contain plaintext")
	}
	if bytes.Contains(h.clientLogs.Bytes(), []byte(secretMarker)) {
		h.t.Error("client logs contain plaintext")
	}

	var forms [][]byte
	secrets := harnessClients.takeSecrets(h.t)
	for _, c := range harnessClients.take(h.t) {
		secrets = append(secrets, client.SecretsForTest(c)...)
	}
	for _, s := range secrets {
		forms = append(forms, s, []byte(hex.EncodeToString(s)), []byte(base64.StdEncoding.EncodeToString(s)), []byte(base64.RawURLEncoding.EncodeToString(s)))
	}
	if len(forms) == 0 {
		return
	}
	logs := map[string][]byte{"relay logs": h.relayLogs.Bytes(), "client logs": h.clientLogs.Bytes()}
	for name, b := range logs {
		for _, f := range forms {
			if bytes.Contains(b, f) {
				h.t.Errorf("%s contain a key", name)
				break
			}
		}
	}
	// Badger compresses its table files, which can hide a key from the
	// scan of files below, so the records are also read through Badger.
	records := relayRecords(h.t, h.relay.dir)
	if bytes.Contains(records, []byte(secretMarker)) {
		h.t.Error("a relay record contains plaintext")
	}
	for _, f := range forms {
		if bytes.Contains(records, f) {
			h.t.Error("a relay record contains a key")
			break
		}
	}
	err := filepath.WalkDir(h.relay.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, f := range forms {
			if bytes.Contains(b, f) {
				h.t.Errorf("relay file %s contains a key", path)
				break
			}
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// relayRecords returns every key and value of the stopped relay's Badger
// database in dir.
func relayRecords(t *testing.T, dir string) []byte {
	t.Helper()
	all, err := badgerscan.Records(dir)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// testClients keeps the clients each test made, for the harness's scan
// for keys when the test ends.
type testClients struct {
	mu gosync.Mutex
	m  map[*testing.T][]*client.Client
	// secrets holds what SecretsForTest returned for each client of a
	// test as it closed.
	secrets map[*testing.T][][]byte
}

var harnessClients = &testClients{m: map[*testing.T][]*client.Client{}, secrets: map[*testing.T][][]byte{}}

func (tc *testClients) keepSecrets(t *testing.T, secrets [][]byte) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.secrets[t] = append(tc.secrets[t], secrets...)
}

func (tc *testClients) add(t *testing.T, c *client.Client) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.m[t] = append(tc.m[t], c)
}

// take returns the clients of t and removes them from tc.
func (tc *testClients) take(t *testing.T) []*client.Client {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	cs := tc.m[t]
	delete(tc.m, t)
	return cs
}

// takeSecrets returns the secrets kept for t and removes them from tc.
func (tc *testClients) takeSecrets(t *testing.T) [][]byte {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	s := tc.secrets[t]
	delete(tc.secrets, t)
	return s
}

// expectedText is the text of a fresh replica that applied updates, what
// the honest updates make a document.
func expectedText(t *testing.T, updates ...[]byte) string {
	t.Helper()
	doc := crdt.NewDoc(crdt.ReplicaID(99))
	for _, u := range updates {
		if err := doc.Apply(u); err != nil {
			t.Fatal(err)
		}
	}
	body, err := doc.Text("body")
	if err != nil {
		t.Fatal(err)
	}
	return body.String()
}

func checkText(t *testing.T, c *client.Client, doc envelope.DocID, want string) {
	t.Helper()
	got, err := c.Text(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("text = %q, want %q", got, want)
	}
}

func reports(t *testing.T, c *client.Client, doc envelope.DocID) []client.Report {
	t.Helper()
	rs, err := c.Reports(doc)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// wantReport fails unless reports holds one of kind about author's seq.
func wantReport(t *testing.T, rs []client.Report, kind client.ReportKind, author string, seq uint64) {
	t.Helper()
	for _, r := range rs {
		if r.Kind == kind && r.Author == author && r.Seq == seq {
			if r.Time.IsZero() || r.Detail == "" {
				t.Errorf("report %+v lacks a time or a detail", r)
			}
			return
		}
	}
	t.Errorf("no %s report for author %s seq %d in reports %+v", kind, author, seq, rs)
}

// wantOnlyKinds fails if reports holds a kind not in kinds.
func wantOnlyKinds(t *testing.T, rs []client.Report, kinds ...client.ReportKind) {
	t.Helper()
	for _, r := range rs {
		if !slices.Contains(kinds, r.Kind) {
			t.Errorf("unexpected %s report: %+v", r.Kind, r)
		}
	}
}

// dropSeq returns a hook that drops the Deliver of author's seq.
func dropSeq(author [32]byte, seq uint64) func(wire.Message) []wire.Message {
	return func(m wire.Message) []wire.Message {
		if d, ok := m.(*wire.Deliver); ok {
			if a, s := seqOf(d.Envelope); a == author && s == seq {
				return nil
			}
		}
		return []wire.Message{m}
	}
}

func TestHonestRelayNoReports(t *testing.T) {
	h := newHarness(t)
	v, _ := h.member()
	doc := h.author.createDoc(v)
	var updates [][]byte
	for _, w := range []string{"one-secretword ", "two-secretword "} {
		_, u := h.author.write(doc, w)
		updates = append(updates, u)
	}
	started := time.Now()

	h.sync(v)

	checkText(t, v, doc, expectedText(t, updates...))
	if rs := reports(t, v, doc); len(rs) != 0 {
		t.Errorf("reports from an honest relay: %+v", rs)
	}
	synced, err := v.LastSynced(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(synced) != 1 || synced[0].Member != h.author.key() || synced[0].Seq != 2 {
		t.Fatalf("LastSynced = %+v, want the author at seq 2", synced)
	}
	if at := synced[0].LastSynced; at.Before(started.Add(-time.Second)) || at.After(time.Now()) {
		t.Errorf("last synced at %v, not during the sync", at)
	}
}

func TestRelayDropsUpdate(t *testing.T) {
	h := newHarness(t)
	v, proxy := h.member()
	w := newClient(t, h.relay.url(), h.clientLogs) // an honest path
	doc := h.author.createDoc(v, w)
	_, u1 := h.author.write(doc, "one-secretword ")
	h.author.write(doc, "two-secretword ")
	h.author.write(doc, "three-secretword ")
	proxy.set(dropSeq(h.author.key(), 2), nil)

	h.sync(v)

	checkText(t, v, doc, expectedText(t, u1))
	rs := reports(t, v, doc)
	wantReport(t, rs, client.ReportGap, h.author.prefix(), 3)
	wantOnlyKinds(t, rs, client.ReportGap)

	// Another member received all three and lists them in its own
	// update, so this device learns that the relay withheld updates.
	h.sync(w)
	if err := w.Edit(h.ctx, doc, func(t *crdt.Text) error { return t.Insert(0, "w-secretword ") }); err != nil {
		t.Fatal(err)
	}
	h.sync(w)
	h.sync(v)

	rs = reports(t, v, doc)
	wantReport(t, rs, client.ReportWithheld, h.author.prefix(), 3)
	var honest [][]byte
	for _, raw := range proxy.deliveredEnvelopes() {
		if a, s := seqOf(raw); a != h.author.key() || s == 1 {
			honest = append(honest, h.author.open(doc, raw))
		}
	}
	checkText(t, v, doc, expectedText(t, honest...))

	// The findings and the chain state survive a restart: no report is
	// made twice, and the text is the same.
	before, _ := v.Text(doc)
	h.sync(v)
	if n := len(reports(t, v, doc)); n != len(rs) {
		t.Errorf("%d reports after another sync, want %d", n, len(rs))
	}
	checkText(t, v, doc, before)
}

func TestRelayReordersUpdates(t *testing.T) {
	h := newHarness(t)
	v, proxy := h.member()
	doc := h.author.createDoc(v)
	var updates [][]byte
	for _, w := range []string{"one-secretword ", "two-secretword ", "three-secretword "} {
		_, u := h.author.write(doc, w)
		updates = append(updates, u)
	}
	// Hold seq 2 back and send it after seq 3, under swapped cursors so
	// that the cursors still grow.
	var held *wire.Deliver
	proxy.set(func(m wire.Message) []wire.Message {
		d, ok := m.(*wire.Deliver)
		if !ok {
			return []wire.Message{m}
		}
		switch _, s := seqOf(d.Envelope); s {
		case 2:
			held = d
			return nil
		case 3:
			held.Cursor, d.Cursor = d.Cursor, held.Cursor
			return []wire.Message{d, held}
		}
		return []wire.Message{m}
	}, nil)

	h.sync(v)

	checkText(t, v, doc, expectedText(t, updates...))
	rs := reports(t, v, doc)
	wantReport(t, rs, client.ReportGap, h.author.prefix(), 3)
	wantOnlyKinds(t, rs, client.ReportGap)
}

func TestRelayReplaysUpdate(t *testing.T) {
	h := newHarness(t)
	v, proxy := h.member()
	doc := h.author.createDoc(v)
	first, u1 := h.author.write(doc, "one-secretword ")
	_, u2 := h.author.write(doc, "two-secretword ")
	// Before CaughtUp, deliver the first envelope again under a new
	// cursor.
	proxy.set(func(m wire.Message) []wire.Message {
		if c, ok := m.(*wire.CaughtUp); ok {
			c.Cursor++
			return []wire.Message{&wire.Deliver{Doc: c.Doc, Cursor: c.Cursor, Envelope: first}, m}
		}
		return []wire.Message{m}
	}, nil)

	h.sync(v)

	checkText(t, v, doc, expectedText(t, u1, u2))
	rs := reports(t, v, doc)
	wantReport(t, rs, client.ReportReplay, h.author.prefix(), 1)
	wantOnlyKinds(t, rs, client.ReportReplay)
}

func TestRelayForgesSignature(t *testing.T) {
	cases := map[string]func(raw []byte){
		// The ciphertext ends before the 64-byte signature and its 2-byte
		// prefix.
		"ciphertext byte": func(raw []byte) { raw[len(raw)-67] ^= 1 },
		// The header's Epoch field, after the array, bin8 prefix,
		// version, kind and document id.
		"header byte": func(raw []byte) { raw[3+1+1+16] ^= 1 },
		"signature":   func(raw []byte) { raw[len(raw)-1] ^= 1 },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			v, proxy := h.member()
			doc := h.author.createDoc(v)
			_, u1 := h.author.write(doc, "one-secretword ")
			h.author.write(doc, "two-secretword ")
			h.author.write(doc, "three-secretword ")
			proxy.set(func(m wire.Message) []wire.Message {
				if d, ok := m.(*wire.Deliver); ok {
					if _, s := seqOf(d.Envelope); s == 2 {
						d.Envelope = bytes.Clone(d.Envelope)
						change(d.Envelope)
					}
				}
				return []wire.Message{m}
			}, nil)

			h.sync(v)

			checkText(t, v, doc, expectedText(t, u1))
			rs := reports(t, v, doc)
			wantReport(t, rs, client.ReportBadSignature, h.author.prefix(), 2)
			wantReport(t, rs, client.ReportGap, h.author.prefix(), 3)
			wantOnlyKinds(t, rs, client.ReportBadSignature, client.ReportGap)
		})
	}
}

func TestRelaySwapsCiphertextFromAnotherDocument(t *testing.T) {
	cases := map[string]struct {
		swap func(ours, theirs []byte) []byte
		want client.ReportKind
		// seq is the sequence number in the delivered header.
		seq uint64
	}{
		// The whole envelope of the other document: its header names
		// that document.
		"whole envelope": {func(_, theirs []byte) []byte { return theirs }, client.ReportWrongDocument, 1},
		// The other document's ciphertext under this envelope's header
		// and signature.
		"ciphertext only": {func(ours, theirs []byte) []byte {
			o, err := envelope.Unmarshal(ours)
			if err != nil {
				panic(err)
			}
			th, err := envelope.Unmarshal(theirs)
			if err != nil {
				panic(err)
			}
			o.Ciphertext, o.Commitment, o.Nonce = th.Ciphertext, th.Commitment, th.Nonce
			b, err := o.Marshal()
			if err != nil {
				panic(err)
			}
			return b
		}, client.ReportBadSignature, 2},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			v, proxy := h.member()
			doc := h.author.createDoc(v)
			other := h.author.createDoc(v)
			_, u1 := h.author.write(doc, "one-secretword ")
			h.author.write(doc, "two-secretword ")
			theirs, otherUpdate := h.author.write(other, "other-secretword ")
			proxy.set(func(m wire.Message) []wire.Message {
				if d, ok := m.(*wire.Deliver); ok && bytes.Equal(d.Doc, doc[:]) {
					if _, s := seqOf(d.Envelope); s == 2 {
						d.Envelope = tc.swap(d.Envelope, theirs)
					}
				}
				return []wire.Message{m}
			}, nil)

			h.sync(v)

			checkText(t, v, doc, expectedText(t, u1))
			checkText(t, v, other, expectedText(t, otherUpdate))
			rs := reports(t, v, doc)
			wantReport(t, rs, tc.want, h.author.prefix(), tc.seq)
			wantOnlyKinds(t, rs, tc.want)
			if rs := reports(t, v, other); len(rs) != 0 {
				t.Errorf("reports on the other document: %+v", rs)
			}
		})
	}
}

// TestAuthorSealsUnderWrongKey covers the key commitment: an envelope
// signed by its author but sealed under another document's key is
// refused before decryption, and the author's chain goes on.
func TestAuthorSealsUnderWrongKey(t *testing.T) {
	h := newHarness(t)
	v, _ := h.member()
	doc := h.author.createDoc(v)
	_, u1 := h.author.write(doc, "one-secretword ")
	d := h.author.docs[doc]
	right := d.key
	rand.Read(d.key[:])
	h.author.write(doc, "two-secretword ")
	d.key = right
	_, u3 := h.author.write(doc, "three-secretword ")

	h.sync(v)

	checkText(t, v, doc, expectedText(t, u1, u3))
	rs := reports(t, v, doc)
	wantReport(t, rs, client.ReportKeyCommitment, h.author.prefix(), 2)
	wantOnlyKinds(t, rs, client.ReportKeyCommitment)
}

func TestRelayRollsBack(t *testing.T) {
	cases := map[string]func(h *harness, doc envelope.DocID, alternative []byte) (toClient, toRelay func(wire.Message) []wire.Message){
		// The relay serves the log from the start again.
		"redelivery from scratch": func(*harness, envelope.DocID, []byte) (func(wire.Message) []wire.Message, func(wire.Message) []wire.Message) {
			return nil, func(m wire.Message) []wire.Message {
				if s, ok := m.(*wire.Subscribe); ok {
					s.After = 0
				}
				return []wire.Message{m}
			}
		},
		// The relay's CaughtUp names a cursor below what the client holds.
		"caught up lower": func(*harness, envelope.DocID, []byte) (func(wire.Message) []wire.Message, func(wire.Message) []wire.Message) {
			return func(m wire.Message) []wire.Message {
				if c, ok := m.(*wire.CaughtUp); ok {
					c.Cursor = 1
				}
				return []wire.Message{m}
			}, nil
		},
		// The relay serves the log from the start with another history:
		// the author's other envelope for sequence number 2.
		"other history": func(_ *harness, _ envelope.DocID, alternative []byte) (func(wire.Message) []wire.Message, func(wire.Message) []wire.Message) {
			return func(m wire.Message) []wire.Message {
					if d, ok := m.(*wire.Deliver); ok {
						if _, s := seqOf(d.Envelope); s == 2 {
							d.Envelope = alternative
						}
					}
					return []wire.Message{m}
				}, func(m wire.Message) []wire.Message {
					if s, ok := m.(*wire.Subscribe); ok {
						s.After = 0
					}
					return []wire.Message{m}
				}
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			v, proxy := h.member()
			doc := h.author.createDoc(v)
			_, u1 := h.author.write(doc, "one-secretword ")
			_, alternative, u2, _ := h.author.writeTwice(doc, "two-secretword ", "deux-secretword ")
			_, u3 := h.author.write(doc, "three-secretword ")
			h.sync(v)
			want := expectedText(t, u1, u2, u3)
			checkText(t, v, doc, want)
			if rs := reports(t, v, doc); len(rs) != 0 {
				t.Fatalf("reports before the rollback: %+v", rs)
			}

			proxy.set(tamper(h, doc, alternative))
			h.sync(v)

			checkText(t, v, doc, want)
			rs := reports(t, v, doc)
			if !slices.ContainsFunc(rs, func(r client.Report) bool { return r.Kind == client.ReportRollback }) {
				t.Errorf("no rollback report in %+v", rs)
			}
			if name == "other history" {
				wantReport(t, rs, client.ReportFork, h.author.prefix(), 2)
				wantOnlyKinds(t, rs, client.ReportRollback, client.ReportFork)
			} else {
				wantOnlyKinds(t, rs, client.ReportRollback)
			}
		})
	}
}

// TestRelayForksMembers shows two members different envelopes for one
// sequence number of an author. Each member learns of it from the other
// member's next update, which names the envelope that member holds.
func TestRelayForksMembers(t *testing.T) {
	h := newHarness(t)
	v, proxyV := h.member()
	w, proxyW := h.member()
	doc := h.author.createDoc(v, w)
	_, u1 := h.author.write(doc, "one-secretword ")
	pushed, other, pushedUpdate, otherUpdate := h.author.writeTwice(doc, "cat-secretword ", "dog-secretword ")
	proxyW.set(func(m wire.Message) []wire.Message {
		if d, ok := m.(*wire.Deliver); ok && bytes.Equal(d.Envelope, pushed) {
			d.Envelope = other
		}
		return []wire.Message{m}
	}, nil)
	h.sync(v)
	h.sync(w)
	checkText(t, v, doc, expectedText(t, u1, pushedUpdate))
	checkText(t, w, doc, expectedText(t, u1, otherUpdate))
	if rs := reports(t, v, doc); len(rs) != 0 {
		t.Fatalf("member V reports before the members wrote: %+v", rs)
	}

	// Each member writes, and receives the other's update.
	for _, c := range []*client.Client{v, w} {
		if err := c.Edit(h.ctx, doc, func(t *crdt.Text) error { return t.Insert(0, "note-secretword ") }); err != nil {
			t.Fatal(err)
		}
		h.sync(c)
	}
	h.sync(v)
	h.sync(w)

	// Each member's text is what the updates it accepted make it: those
	// its proxy delivered and its own, which the other proxy delivered.
	authoredBy := func(c *client.Client, raws [][]byte) [][]byte {
		var out [][]byte
		for _, raw := range raws {
			if a, _ := seqOf(raw); bytes.Equal(a[:], c.Identity().Public().Sign) {
				out = append(out, raw)
			}
		}
		return out
	}
	members := map[string]struct {
		c, peer      *client.Client
		proxy, other *tamperProxy
	}{"V": {v, w, proxyV, proxyW}, "W": {w, v, proxyW, proxyV}}
	for name, m := range members {
		rs := reports(t, m.c, doc)
		wantReport(t, rs, client.ReportFork, h.author.prefix(), 2)
		wantOnlyKinds(t, rs, client.ReportFork)

		accepted := append(m.proxy.deliveredEnvelopes(), authoredBy(m.c, m.other.deliveredEnvelopes())...)
		if len(authoredBy(m.peer, accepted)) != 1 || len(authoredBy(m.c, accepted)) != 1 {
			t.Fatalf("member %s: want one update of each member among %d envelopes", name, len(accepted))
		}
		var updates [][]byte
		for _, raw := range accepted {
			updates = append(updates, h.author.open(doc, raw))
		}
		got, err := m.c.Text(doc)
		if err != nil {
			t.Fatal(err)
		}
		if want := expectedText(t, updates...); got != want {
			t.Errorf("member %s text = %q, want %q", name, got, want)
		}
	}
}

// TestReportsSurviveReopen closes a client after a relay dropped an
// update, opens it again from its store, and lets the relay deliver the
// missing update late: the envelope kept aside for the gap applies then.
func TestReportsSurviveReopen(t *testing.T) {
	h := newHarness(t)
	p := startProxy(t, h.relay.addr)
	dir := t.TempDir()
	id, err := client.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(h.clientLogs, nil))
	open := func() *client.Client {
		c, err := client.Open(h.ctx, client.Config{Store: openStore(t, dir), Identity: id, Dialer: wstransport.Dialer{}, RelayURL: p.url(), Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	v := open()
	doc := h.author.createDoc(v)
	_, u1 := h.author.write(doc, "one-secretword ")
	dropped, u2 := h.author.write(doc, "two-secretword ")
	_, u3 := h.author.write(doc, "three-secretword ")
	p.set(dropSeq(h.author.key(), 2), nil)
	h.sync(v)
	before := reports(t, v, doc)
	wantReport(t, before, client.ReportGap, h.author.prefix(), 3)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}

	v = open()
	checkText(t, v, doc, expectedText(t, u1))
	after := reports(t, v, doc)
	if len(after) != len(before) {
		t.Fatalf("%d reports after reopening, want %d", len(after), len(before))
	}
	for i := range before {
		if after[i].Kind != before[i].Kind || after[i].Seq != before[i].Seq || !after[i].Time.Equal(before[i].Time) {
			t.Errorf("report %d after reopening = %+v, want %+v", i, after[i], before[i])
		}
	}

	p.set(func(m wire.Message) []wire.Message {
		if c, ok := m.(*wire.CaughtUp); ok {
			c.Cursor++
			return []wire.Message{&wire.Deliver{Doc: c.Doc, Cursor: c.Cursor, Envelope: dropped}, m}
		}
		return []wire.Message{m}
	}, nil)
	h.sync(v)

	checkText(t, v, doc, expectedText(t, u1, u2, u3))
	if n := len(reports(t, v, doc)); n != len(before) {
		t.Errorf("%d reports after the gap closed, want still %d", n, len(before))
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir)
	defer s.Close()
	kept := 0
	prefix := append(append([]byte("d/"), doc[:]...), "/rejected/"...)
	if err := s.Scan(h.ctx, prefix, func(_, _ []byte) error { kept++; return nil }); err != nil {
		t.Fatal(err)
	}
	if kept != 0 {
		t.Errorf("%d envelopes still kept aside after the gap closed, want 0", kept)
	}
}
