package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"interlude/sync/envelope"
	"interlude/sync/wire"
)

const (
	// pingInterval is how often the writer pings an idle client, and
	// readTimeout how long the reader waits for any frame or pong. The
	// gap between them allows one lost ping.
	pingInterval = 30 * time.Second
	readTimeout  = 75 * time.Second
	// writeTimeout bounds one frame write. It leaves a full-size frame
	// (about 4 MiB) a minute, enough at about 1 Mbit/s.
	writeTimeout = 60 * time.Second
	// handshakeTimeout bounds the wait for Auth after Hello.
	handshakeTimeout = 30 * time.Second
	// closeGrace is how long the relay keeps reading, and discarding,
	// after it sent a close frame, so the client can read the Error before
	// the TCP connection goes away.
	closeGrace = 5 * time.Second
	// deliverBatchBytes is how much of a log the writer reads from Badger
	// at once. Between batches it sends pending replies, so a long backlog
	// does not hold back an Ack.
	deliverBatchBytes = 4 << 20
)

// conn is one client's WebSocket session. After authentication, one reader
// goroutine decodes and handles requests and one writer goroutine owns
// every write of a data frame, because gorilla/websocket allows only one
// concurrent writer. Control frames (close, ping, pong) may be written from
// any goroutine.
type conn struct {
	srv  *Server
	id   uint64
	host string // the request's Host header, signed by the client in Auth
	log  *slog.Logger

	// ws is set once before serve and never changed afterwards.
	ws *websocket.Conn
	// device and challenge are set by authenticate before the reader and
	// writer start.
	device    deviceKey
	challenge []byte

	// claimMu guards claims and claimed. The reader adds claims; the
	// writer and other connections' notifications read them.
	claimMu sync.RWMutex
	// claims maps a document to the keys this connection proved it holds
	// for it with Claim, in the order claimed.
	claims map[envelope.DocID][]deviceKey
	// claimed holds every key in claims, and nclaims counts the pairs
	// of document and key in it.
	claimed map[deviceKey]struct{}
	nclaims int
	// invites holds the invitations this connection opened with
	// TakeInvite and still waits on, at most maxConnInvites; guarded by
	// claimMu.
	invites map[[16]byte]struct{}

	// out carries replies from the reader to the writer, in order.
	out chan outgoing
	// wake is signalled (capacity 1) when a subscription of this
	// connection becomes pending.
	wake chan struct{}
	// subs maps each subscribed document to its subscription. The writer
	// goroutine owns it.
	subs map[envelope.DocID]*subscription
	// authed is set once device is; other goroutines read device only
	// after they see it set.
	authed atomic.Bool
	// shared is set, and wake signalled, when a membership entry added
	// a key this connection holds to a document, or an invitee responded
	// to an invitation it waits on; the writer then sends Shared.
	shared atomic.Bool

	mu   sync.Mutex
	shut bool // guarded by mu; set by closeForShutdown
}

// outgoing is one reply for the writer.
type outgoing struct {
	msg wire.Message
	// subscribe, when set, is started right after msg (its OK) is sent,
	// so that the OK comes before any Deliver.
	subscribe *subscription
	// closeCode, when nonzero, makes the writer send a close frame with
	// this code after msg and stop.
	closeCode int
}

// protocolError is a frame the relay cannot accept. The relay sends Err
// and closes the connection with CloseCode.
type protocolError struct {
	Err       *wire.Error
	CloseCode int
}

func (e *protocolError) Error() string { return e.Err.Error() }

// errClosing is returned by the writer after it sent a close frame.
var errClosing = errors.New("relay closed the connection after a protocol error")

// setWebSocket stores ws unless Shutdown has begun, in which case it
// closes ws and returns false.
func (c *conn) setWebSocket(ws *websocket.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shut {
		ws.Close()
		return false
	}
	c.ws = ws
	return true
}

// closeForShutdown sends the client a going-away close frame and closes the
// socket, which ends the reader and, through it, the writer.
func (c *conn) closeForShutdown() {
	c.mu.Lock()
	c.shut = true
	ws := c.ws
	c.mu.Unlock()
	if ws == nil {
		return
	}
	msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "relay shutting down")
	ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	ws.Close()
}

// serve runs the session: the handshake in the calling goroutine, then the
// reader and the writer under a child context until either ends.
func (c *conn) serve(parent context.Context) {
	defer c.ws.Close()
	c.log.Info("connection opened")

	if err := c.authenticate(); err != nil {
		c.log.Info("connection closed", "reason", err)
		return
	}
	c.log = c.log.With("device", hex.EncodeToString(c.device[:8]))
	c.log.Info("device authenticated")

	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var wg sync.WaitGroup
	var readErr, writeErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer cancel()
		readErr = c.readLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		// Cancelling frees a reader blocked on a full out channel. A
		// reader that is draining after a protocol error stops on its
		// read deadline instead.
		defer cancel()
		writeErr = c.writeLoop(ctx)
		if writeErr != nil && !errors.Is(writeErr, errClosing) {
			c.ws.Close() // unblocks the reader
		}
	}()
	wg.Wait()

	for _, sub := range c.subs {
		c.srv.hub.remove(sub)
	}
	attrs := []any{"reason", readErr}
	if writeErr != nil && !errors.Is(writeErr, errClosing) {
		attrs = append(attrs, "write_err", writeErr)
	}
	c.log.Info("connection closed", attrs...)
}

// authenticate sends Hello and waits for a valid Auth. Requests that come
// before it get an Error with CodeNotAuthenticated.
func (c *conn) authenticate() error {
	challenge := make([]byte, wire.ChallengeSize)
	if _, err := rand.Read(challenge); err != nil {
		return fmt.Errorf("read random challenge: %w", err)
	}
	if err := c.writeMessage(&wire.Hello{Version: wire.Version, Relay: c.host, Challenge: challenge, RelayKey: c.srv.store.relayKey.Public().(ed25519.PublicKey)}); err != nil {
		return fmt.Errorf("send Hello: %w", err)
	}

	c.ws.SetReadDeadline(time.Now().Add(handshakeTimeout))
	for {
		msg, err := c.nextMessage()
		if perr, ok := errors.AsType[*protocolError](err); ok {
			c.closeWithError(perr)
			return err
		}
		if err != nil {
			return fmt.Errorf("wait for Auth: %w", err)
		}

		auth, ok := msg.(*wire.Auth)
		if !ok {
			e := c.reject(requestRef(msg), wire.CodeNotAuthenticated, nil, "send Auth before any request")
			if err := c.writeMessage(e); err != nil {
				return fmt.Errorf("send Error: %w", err)
			}
			continue
		}
		if auth.Version != wire.Version {
			msg := fmt.Sprintf("protocol version %d is not supported; this relay speaks version %d", auth.Version, wire.Version)
			perr := &protocolError{c.reject(0, wire.CodeUnsupportedVersion, nil, msg), websocket.ClosePolicyViolation}
			c.closeWithError(perr)
			return perr
		}
		if err := wire.VerifyAuth(auth, c.host, challenge); err != nil {
			msg := fmt.Sprintf("authentication for relay %q failed: %v", c.host, err)
			perr := &protocolError{c.reject(0, wire.CodeAuthFailed, nil, msg), websocket.ClosePolicyViolation}
			c.closeWithError(perr)
			return perr
		}

		copy(c.device[:], auth.Device)
		c.challenge = challenge
		c.authed.Store(true)
		c.auditEvent(AuditAuth, nil, 0, 0, "")
		if err := c.writeMessage(&wire.Welcome{Version: wire.Version}); err != nil {
			return fmt.Errorf("send Welcome: %w", err)
		}
		return nil
	}
}

// closeWithError sends the Error and a close frame from the calling
// goroutine, which must be the only writer, then lingers.
func (c *conn) closeWithError(perr *protocolError) {
	if err := c.writeMessage(perr.Err); err == nil {
		c.writeClose(perr)
	}
	c.drain()
}

// readLoop reads and handles requests until the connection fails or
// the client sends a frame the relay cannot accept.
func (c *conn) readLoop(ctx context.Context) error {
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(readTimeout))
	})
	for {
		c.ws.SetReadDeadline(time.Now().Add(readTimeout))
		msg, err := c.nextMessage()
		if perr, ok := errors.AsType[*protocolError](err); ok {
			// The writer sends the Error and the close frame, while
			// this goroutine drains what the client still sends.
			c.enqueue(ctx, outgoing{msg: perr.Err, closeCode: perr.CloseCode})
			c.drain()
			return err
		}
		if err != nil {
			return err
		}
		if !c.enqueue(ctx, c.handle(msg)) {
			return ctx.Err()
		}
	}
}

func (c *conn) enqueue(ctx context.Context, o outgoing) bool {
	select {
	case c.out <- o:
		return true
	case <-ctx.Done():
		return false
	}
}

// nextMessage reads one frame and decodes it. A frame the relay cannot
// accept returns a *protocolError.
func (c *conn) nextMessage() (wire.Message, error) {
	typ, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	if typ != websocket.BinaryMessage {
		e := c.reject(0, wire.CodeMalformed, nil, "text frame: the protocol uses binary frames only")
		return nil, &protocolError{e, websocket.CloseUnsupportedData}
	}
	// The limit is enforced here rather than with SetReadLimit, because
	// gorilla replies to an oversized frame with a close frame of its own,
	// after which the relay could no longer send the Error.
	frame, err := io.ReadAll(io.LimitReader(r, wire.MaxFrame+1))
	if err != nil {
		return nil, err
	}
	msg, perr := decodeFrame(frame)
	if perr != nil {
		c.reject(0, perr.Err.Code, nil, perr.Err.Message)
		return nil, perr
	}
	return msg, nil
}

// decodeFrame decodes one client frame, or returns the error to send.
func decodeFrame(frame []byte) (wire.Message, *protocolError) {
	if len(frame) > wire.MaxFrame {
		e := &wire.Error{Code: wire.CodeTooLarge, Message: fmt.Sprintf("frame is larger than the limit of %d bytes", wire.MaxFrame)}
		return nil, &protocolError{e, websocket.CloseMessageTooBig}
	}
	msg, err := wire.Decode(frame)
	if err != nil {
		e := &wire.Error{Code: wire.CodeMalformed, Message: err.Error()}
		return nil, &protocolError{e, websocket.ClosePolicyViolation}
	}
	return msg, nil
}

// drain reads and discards frames for up to closeGrace, so the client
// receives what the relay sent before the socket closes. Closing a TCP
// socket with unread input resets the connection, and a reset can discard
// data the client has not yet read.
func (c *conn) drain() {
	c.ws.SetReadDeadline(time.Now().Add(closeGrace))
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}

// writeLoop sends replies and deliveries until ctx is done or a write
// fails. It returns errClosing after it sent a close frame.
func (c *conn) writeLoop(ctx context.Context) error {
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		// While a subscription is pending, the pull case is always ready,
		// and select picks at random among ready cases, so replies and
		// batches of deliveries take turns.
		var pull <-chan struct{} = c.wake
		if c.hasPending() {
			pull = alwaysReady
		}
		select {
		case <-ctx.Done():
			return nil
		case o := <-c.out:
			if err := c.send(o); err != nil {
				return err
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				return fmt.Errorf("send ping: %w", err)
			}
		case <-pull:
			if c.shared.Swap(false) {
				if err := c.writeMessage(&wire.Shared{}); err != nil {
					return err
				}
			}
			if err := c.pullPending(); err != nil {
				return err
			}
		}
	}
}

var alwaysReady = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

func (c *conn) send(o outgoing) error {
	if err := c.writeMessage(o.msg); err != nil {
		return err
	}
	if o.subscribe != nil {
		c.startSubscription(o.subscribe)
	}
	if o.closeCode != 0 {
		c.writeClose(&protocolError{o.msg.(*wire.Error), o.closeCode})
		return errClosing
	}
	return nil
}

func (c *conn) writeMessage(m wire.Message) error {
	frame, err := wire.Encode(m)
	if err != nil {
		c.log.Error("encode reply failed", "type", m.Type(), "err", err)
		return err
	}
	c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.ws.WriteMessage(websocket.BinaryMessage, frame)
}

func (c *conn) writeClose(perr *protocolError) {
	msg := websocket.FormatCloseMessage(perr.CloseCode, string(perr.Err.Code))
	c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
}

// startSubscription registers sub with the hub before its first read of
// the log, so an append between the two is read or notified, never lost.
// A second Subscribe to the same document replaces the first.
func (c *conn) startSubscription(sub *subscription) {
	if old := c.subs[sub.doc]; old != nil {
		c.srv.hub.remove(old)
	}
	c.subs[sub.doc] = sub
	c.srv.hub.add(sub)
	sub.pending.Store(true)
}

func (c *conn) hasPending() bool {
	for _, sub := range c.subs {
		if sub.pending.Load() {
			return true
		}
	}
	return false
}

// pullPending sends one batch of each pending subscription.
func (c *conn) pullPending() error {
	for _, sub := range c.subs {
		if !sub.pending.Load() {
			continue
		}
		if err := c.pull(sub); err != nil {
			return err
		}
	}
	return nil
}

// pull reads the log of sub's document after sub.pos and sends it, then
// CaughtUp once the first read reaches the end of the log.
func (c *conn) pull(sub *subscription) error {
	// Clear the flag before reading: an append that commits after the
	// read sets it again, so no entry is left behind.
	sub.pending.Store(false)
	// A member removed while subscribed gets nothing written after its
	// removal.
	keys := c.keysFor(sub.doc)
	member, err := c.srv.store.isMemberAny(sub.doc, keys)
	if err != nil {
		c.log.Error("check membership in Badger failed", "doc", sub.doc.String(), "err", err)
		c.writeMessage(&wire.Error{Code: wire.CodeInternal, Message: "the relay failed to read the document's members; reconnect and subscribe again"})
		return fmt.Errorf("check membership of document %s: %w", sub.doc, err)
	}
	if !member {
		c.writeMessage(c.reject(0, wire.CodeNotMember, &sub.doc, fmt.Sprintf("this device was removed from document %s", sub.doc)))
		return fmt.Errorf("device removed from document %s", sub.doc)
	}
	entries, members, last, more, err := c.srv.store.readLog(sub.doc, sub.pos, sub.entryPos, deliverBatchBytes)
	if err != nil {
		c.log.Error("read document log from Badger failed", "doc", sub.doc.String(), "after", sub.pos, "err", err)
		c.writeMessage(&wire.Error{Code: wire.CodeInternal, Message: "the relay failed to read the document log; reconnect and subscribe again"})
		return fmt.Errorf("read log of document %s: %w", sub.doc, err)
	}
	if !sub.caughtUp && sub.pos > last {
		// The client has seen more of this log than the relay holds,
		// for example after the relay's data was restored from an older
		// copy. CaughtUp with the smaller cursor lets the client see it.
		c.log.Warn("subscription starts after the last cursor of the log", "doc", sub.doc.String(), "after", sub.pos, "last", last)
	}

	// Membership entries go to every member, the author too, each before
	// the first envelope stored after it, so a member holds every entry
	// an envelope names before the envelope arrives.
	sendEntriesUpTo := func(cursor uint64) error {
		for len(members) > 0 && members[0].After < cursor {
			m := members[0]
			members = members[1:]
			sub.entryPos = m.Index + 1
			d := &wire.Deliver{Doc: sub.doc[:], Cursor: m.After, Entry: m.Entry, Countersig: m.Countersig}
			if err := c.writeMessage(d); err != nil {
				return err
			}
		}
		return nil
	}
	for _, e := range entries {
		if err := sendEntriesUpTo(e.Cursor); err != nil {
			return err
		}
		sub.pos = e.Cursor
		if !sub.includeOwn && slices.Contains(keys, e.Author) {
			continue
		}
		d := &wire.Deliver{Doc: sub.doc[:], Cursor: e.Cursor, Envelope: e.Envelope}
		if err := c.writeMessage(d); err != nil {
			return err
		}
	}
	if !more {
		if err := sendEntriesUpTo(last + 1); err != nil {
			return err
		}
	}
	if more {
		sub.pending.Store(true)
		return nil
	}
	if !sub.caughtUp {
		sub.caughtUp = true
		return c.writeMessage(&wire.CaughtUp{Doc: sub.doc[:], Cursor: last})
	}
	return nil
}
