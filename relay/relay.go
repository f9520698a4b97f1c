// Package relay is the zero-knowledge sync server: it stores the
// envelopes that devices push and forwards them to the other members of
// each document, over the WebSocket protocol of package sync/wire.
//
// The relay holds no document key. It authenticates devices by their
// Ed25519 public keys, bound to the relay's host name by the signed
// challenge, and checks each envelope's signature, sequence number and
// hash chain with the author's public key. Per document it keeps an
// append-only log of envelopes numbered by cursor, the head of each
// author's chain, and the signed membership log (package sync/membership)
// with each member's sealed copies of the document keys. The membership
// log decides who may subscribe, push and change members, and the relay
// countersigns each of its entries with a key kept in its database (see
// membership.go). It cannot read any of it, and it does not link the
// packages that can (crdt and client), which a test enforces.
//
// Data lives in one Badger database with synchronous writes: the relay
// sends Ack for a push only after the envelope is on disk. With
// Config.EncryptionKey set, Badger encrypts the database at rest. The
// same database holds an append-only, hash-chained audit log of what the
// relay did, with metadata only (see AuditRecord and VerifyAudit).
//
// To run a relay on loopback, for example in a test, call Open, listen on
// 127.0.0.1:0 and call Serve (see the package example).
package relay

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"interlude/sync/envelope"
)

// Config configures a relay.
type Config struct {
	// DataDir is the directory of the Badger database. It is created if
	// missing. Only one process can open it at a time.
	DataDir string
	// Logger receives the relay's logs. Nil discards them.
	Logger *slog.Logger
	// Web is the built web app served at "/". When nil, "/" serves a page
	// that explains how to build it.
	Web fs.FS
	// EncryptionKey, when set, encrypts the database at rest. A data
	// directory created with a key opens only with the same key, and one
	// created without a key only without. See ReadEncryptionKeyFile.
	EncryptionKey EncryptionKey
	// MembershipCacheSize is the maximum number of documents whose
	// membership state the relay keeps in memory. The relay rebuilds an
	// evicted state from the document's membership log on its next use,
	// which costs one signature check per entry. Zero means
	// DefaultMembershipCacheSize.
	//
	// The limit counts documents, not bytes. Measured on linux/amd64 with
	// Go 1.26, a state takes about 3 KB for a document of three members
	// and about 600 KB for one of 1000 members.
	MembershipCacheSize int
}

// Server is a relay. Create it with Open, serve it with Serve or mount
// Handler on your own server, and stop it with Shutdown.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   *store
	audit   *auditLog
	hub     hub
	handler http.Handler
	http    *http.Server

	// ctx is the parent of every connection's context; Shutdown cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	lastConnID atomic.Uint64

	mu       sync.Mutex
	closing  bool               // guarded by mu; set by Shutdown
	conns    map[*conn]struct{} // guarded by mu
	addr     net.Addr           // guarded by mu; first address passed to Serve
	connWait sync.WaitGroup     // Add only under mu while !closing

	shutdownOnce sync.Once
	shutdownErr  error
}

// Open opens the relay's database in cfg.DataDir and returns a relay
// ready to serve.
func Open(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("relay: missing data directory: set Config.DataDir")
	}
	base := cfg.Logger
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}
	log := base.With("component", "relay")

	cacheSize := cfg.MembershipCacheSize
	if cacheSize == 0 {
		cacheSize = DefaultMembershipCacheSize
	}
	if cacheSize < 0 {
		return nil, fmt.Errorf("relay: invalid membership cache size %d: set Config.MembershipCacheSize to 0 for the default of %d, or to a positive number of documents", cacheSize, DefaultMembershipCacheSize)
	}

	st, err := openStore(cfg.DataDir, cfg.EncryptionKey, cacheSize, base.With("component", "badger"), log.With("component", "membership_cache"))
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	audit, err := openAuditLog(st.db, log.With("component", "audit"))
	if err != nil {
		st.close()
		return nil, fmt.Errorf("relay: data directory %q: %w", cfg.DataDir, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:    cfg,
		log:    log,
		store:  st,
		audit:  audit,
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[*conn]struct{}),
	}
	s.handler = s.routes()
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Handler returns the relay's HTTP handler: GET /healthz, the WebSocket
// endpoint GET /v1/sync and the web app at /.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve accepts connections on ln until Shutdown. Like http.Server.Serve,
// it returns http.ErrServerClosed after Shutdown and another error if
// accepting fails.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.addr == nil {
		s.addr = ln.Addr()
	}
	s.mu.Unlock()

	// The audit head in the log anchors the audit chain wherever logs are
	// shipped (see AuditAnchor).
	head, headErr := s.AuditHead()
	if headErr != nil {
		s.log.Error("read audit log head failed", "data_dir", s.cfg.DataDir, "err", headErr)
	}
	s.log.Info("relay started", "addr", ln.Addr().String(), "data_dir", s.cfg.DataDir, "encrypted_at_rest", len(s.cfg.EncryptionKey) > 0, "membership_cache_docs", s.store.states.maxDocs, "audit_head", head.String())
	err := s.http.Serve(ln)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("relay stopped accepting connections", "addr", ln.Addr().String(), "err", err)
	}
	return err
}

// Addr returns the address of the first listener passed to Serve, or nil
// before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops accepting connections, closes every open connection,
// waits for their goroutines until ctx is done and closes the database.
// It finishes every step even when one fails, and returns the first
// error. Calls after the first return the first call's result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	// WebSocket connections are hijacked, so http.Server.Shutdown only
	// closes the listeners and idle HTTP connections; the relay closes
	// its WebSocket connections itself.
	firstErr := s.http.Shutdown(ctx)
	s.cancel()
	for _, c := range conns {
		go c.closeForShutdown()
	}

	done := make(chan struct{})
	go func() {
		s.connWait.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// NOTE: the database is closed below even so; a connection still
		// running then fails its request with CodeInternal.
		if firstErr == nil {
			firstErr = fmt.Errorf("relay: wait for %d connections to close: %w", len(conns), ctx.Err())
		}
	}

	s.audit.close()
	head, headErr := s.AuditHead()
	if err := s.store.close(); err != nil {
		s.log.Error("close Badger database failed", "data_dir", s.cfg.DataDir, "err", err)
		if firstErr == nil {
			firstErr = fmt.Errorf("relay: close database in %q: %w", s.cfg.DataDir, err)
		}
	}
	attrs := []any{"data_dir", s.cfg.DataDir}
	if headErr == nil {
		attrs = append(attrs, "audit_head", head.String())
	}
	if addr := s.Addr(); addr != nil {
		attrs = append(attrs, "addr", addr.String())
	}
	s.log.Info("relay stopped", attrs...)
	return firstErr
}

// track registers c so Shutdown can close it, unless the relay is closing.
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	s.connWait.Add(1)
	return true
}

// notifyShared notifies the open connections that hold key, as device or
// claimed key, that a membership entry added it to a document, so their
// clients list their documents again.
func (s *Server) notifyShared(key deviceKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.authed.Load() && c.holds(key) {
			c.shared.Store(true)
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	}
}

// notifyInvite notifies the open connections that wait on invitation id
// that an invitee responded, so their clients take the response at once
// instead of at their next timed pass.
func (s *Server) notifyInvite(id [16]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.authed.Load() && c.stopWaitingInvite(id) {
			c.shared.Store(true)
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	}
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWait.Done()
}

// upgrader accepts WebSocket connections from any origin. Origin checks
// protect sessions authenticated by cookies. Here every session proves its
// device key by signing a fresh challenge, so a page on another origin
// gains nothing it could not get by connecting directly.
var upgrader = websocket.Upgrader{
	CheckOrigin: func(*http.Request) bool { return true },
}

func (s *Server) serveSync(w http.ResponseWriter, r *http.Request) {
	c := &conn{
		srv:  s,
		id:   s.lastConnID.Add(1),
		host: r.Host,
		out:  make(chan outgoing, 16),
		wake: make(chan struct{}, 1),
		subs: make(map[envelope.DocID]*subscription),
	}
	c.log = s.log.With("conn", c.id)
	if !s.track(c) {
		http.Error(w, "relay is shutting down; reconnect later", http.StatusServiceUnavailable)
		return
	}
	defer s.untrack(c)

	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has already written an HTTP error response.
		c.log.Info("websocket upgrade failed", "err", err)
		return
	}
	if !c.setWebSocket(ws) {
		return // Shutdown began during the upgrade
	}
	c.serve(s.ctx)
}
