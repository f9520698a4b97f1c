// Package securestore encrypts a client.Store at rest, so that the files of
// a device's profile, a copied disk or a browser's IndexedDB do not reveal
// what a person wrote.
//
// # What is encrypted
//
// Every value is encrypted with XChaCha20-Poly1305 under a random nonce.
// The associated data is the store's random id and the value's key, so a
// value copied to another key or into another store does not open.
//
// Keys stay in the clear, because the client scans them by prefix in byte
// order. A reader of the files therefore learns what the keys name but not
// what the values contain. With the client's key layout, the keys show:
//
//   - the random id of each document,
//   - how many update records and unsent updates each document has,
//   - the public keys of members a document is waiting to be shared with,
//   - that the device stores an identity.
//
// The sizes of values show too, because encryption does not hide lengths.
// Someone who can write the files can also delete a key or put back an
// older value of the same key, and encryption does not detect either.
//
// # Keys and unlocking
//
// The data key is 32 random bytes, made when the store is created. An
// Unlocker wraps it, and the wrapped key is kept in a header record under
// a reserved key. PassphraseUnlocker derives the wrapping key from a
// passphrase with Argon2id, with the same enforced minimums as the keyring
// package. RawKeyUnlocker takes a 32-byte key, for tests or for a secret
// that a platform keychain or WebAuthn keeps. A wrong passphrase or key
// returns ErrWrongKey and changes nothing.
//
// # Idle lock
//
// With Options.IdleTimeout set, a store that sees no Get, Write or Scan for
// that long zeroes its data key and returns ErrLocked until Unlock is called
// with the passphrase or key again.
//
// NOTE: Go cannot promise that no copy of a key stays in memory. Lock zeroes
// the data key the store holds and drops its cipher, but the cipher keeps
// its own copy of the derived value key, which stays in memory until the
// garbage collector reuses it.
package securestore

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"

	"interlude/client"
)

// Errors returned by Open and by the methods of Store.
var (
	// ErrLocked is returned by Get, Write and Scan while the store is
	// locked, after Lock or an idle timeout.
	ErrLocked = errors.New("securestore: store is locked: unlock it with the passphrase or key")
	// ErrWrongKey is returned by Open and Unlock when the passphrase or key
	// does not open the store's data key.
	ErrWrongKey = errors.New("securestore: the passphrase or key does not unlock this store")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("securestore: store is closed")
	// ErrNotEncrypted is returned by Open for a store that already holds
	// keys but no securestore header, so its data is not encrypted.
	ErrNotEncrypted = errors.New("securestore: the store contains unencrypted data and no securestore header")
	// ErrReservedKey is returned for a key that starts with ReservedPrefix.
	ErrReservedKey = errors.New("securestore: key is reserved for the store's header")
	// ErrCorrupt is returned when a stored value fails authentication.
	ErrCorrupt = errors.New("securestore: stored value failed authentication")
)

// ReservedPrefix starts every key the store keeps for itself. Get and Write
// reject such keys, and Scan skips them.
const ReservedPrefix = "\x00securestore/"

const (
	headerKey     = ReservedPrefix + "header"
	headerMagic   = "ILSS"
	formatVersion = 1
	storeIDSize   = 16
	dataKeySize   = 32
	labelValueKey = "interlude/securestore/v1 value key"
	domainValue   = "interlude/securestore/v1 value\x00"
	domainWrap    = "interlude/securestore/v1 data key\x00"
)

// Options configure a Store.
type Options struct {
	// IdleTimeout is how long the store stays unlocked without a Get, Write
	// or Scan. Zero keeps it unlocked until Lock or Close.
	IdleTimeout time.Duration
	// Clock returns the time and runs the idle timer. Nil means the system
	// clock.
	Clock Clock
}

// Clock is the source of time for the idle lock, so tests can move time
// by hand.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call made by Clock.AfterFunc. *time.Timer is one.
type Timer interface {
	Stop() bool
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Store is a client.Store that encrypts values before they reach the inner
// store. It is safe for concurrent use.
type Store struct {
	inner   client.Store
	idle    time.Duration
	clock   Clock
	storeID [storeIDSize]byte
	method  string // Unlocker.Method of the store's header
	wrapped []byte // the data key, wrapped by the Unlocker

	mu sync.Mutex
	// mu guards the fields below.
	dataKey    []byte      // nil while locked
	aead       cipher.AEAD // nil while locked
	lastUse    time.Time   // end of the newest Get, Write or Scan, or the unlock
	inFlight   int         // Get, Write and Scan calls running
	timer      Timer
	timerEpoch uint64 // counts armed timers, so a replaced timer's call does nothing
	closed     bool
}

var _ client.Store = (*Store)(nil)

// Open returns a Store over inner. On an empty inner store it creates a
// data key and wraps it with unlock. Otherwise it unwraps the stored data
// key with unlock, and a wrong passphrase or key returns ErrWrongKey.
//
// On success the Store owns inner and closes it on Close. On error the
// caller still owns inner, and Open has written nothing to it.
func Open(ctx context.Context, inner client.Store, unlock Unlocker, opts Options) (*Store, error) {
	if inner == nil || unlock == nil {
		return nil, errors.New("securestore: Open needs an inner store and an Unlocker")
	}
	s := &Store{inner: inner, idle: opts.IdleTimeout, clock: opts.Clock}
	if s.clock == nil {
		s.clock = systemClock{}
	}

	raw, err := inner.Get(ctx, []byte(headerKey))
	switch {
	case errors.Is(err, client.ErrNotFound):
		err = s.create(ctx, unlock)
	case err != nil:
		err = fmt.Errorf("securestore: read header: %w", err)
	default:
		if err = s.parseHeader(raw); err == nil {
			err = s.Unlock(ctx, unlock)
		}
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

var errStopScan = errors.New("stop scan")

// create makes the data key of a new store and writes its header.
func (s *Store) create(ctx context.Context, unlock Unlocker) error {
	// 1. Refuse a store with plaintext in it: encrypting only new values
	// would leave the old ones readable and unreadable through this Store.
	err := s.inner.Scan(ctx, nil, func(_, _ []byte) error { return errStopScan })
	if errors.Is(err, errStopScan) {
		return fmt.Errorf("%w: open it as it is, or copy its data into a new encrypted store", ErrNotEncrypted)
	}
	if err != nil {
		return fmt.Errorf("securestore: check that the store is empty: %w", err)
	}

	// 2. Make and wrap the data key.
	if _, err := io.ReadFull(rand.Reader, s.storeID[:]); err != nil {
		return fmt.Errorf("securestore: read random store id: %w", err)
	}
	dataKey := make([]byte, dataKeySize)
	if _, err := io.ReadFull(rand.Reader, dataKey); err != nil {
		return fmt.Errorf("securestore: read random data key: %w", err)
	}
	s.method = unlock.Method()
	s.wrapped, err = unlock.WrapKey(ctx, dataKey, s.wrapAD())
	if err != nil {
		clear(dataKey)
		return fmt.Errorf("securestore: wrap the data key with %s: %w", s.method, err)
	}

	// 3. Write the header, and only then use the key.
	var b client.Batch
	b.Put([]byte(headerKey), s.encodeHeader())
	if err := s.inner.Write(ctx, &b); err != nil {
		clear(dataKey)
		return fmt.Errorf("securestore: write header: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setKeyLocked(dataKey)
}

// wrapAD binds the wrapped data key to this store and its unlock method.
func (s *Store) wrapAD() []byte {
	ad := append([]byte(domainWrap), s.storeID[:]...)
	return append(ad, s.method...)
}

// encodeHeader returns magic, version, store id, the method's length and
// name, and the wrapped data key.
func (s *Store) encodeHeader() []byte {
	b := make([]byte, 0, len(headerMagic)+1+storeIDSize+1+len(s.method)+len(s.wrapped))
	b = append(b, headerMagic...)
	b = append(b, formatVersion)
	b = append(b, s.storeID[:]...)
	b = append(b, byte(len(s.method)))
	b = append(b, s.method...)
	return append(b, s.wrapped...)
}

func (s *Store) parseHeader(b []byte) error {
	const fixed = len(headerMagic) + 1 + storeIDSize + 1
	if len(b) < fixed || !bytes.HasPrefix(b, []byte(headerMagic)) {
		return fmt.Errorf("securestore: header of %d bytes is damaged: it does not start with %q", len(b), headerMagic)
	}
	if v := b[len(headerMagic)]; v != formatVersion {
		return fmt.Errorf("securestore: header version %d, this build reads version %d: update the app", v, formatVersion)
	}
	copy(s.storeID[:], b[len(headerMagic)+1:])
	n := int(b[fixed-1])
	if len(b) < fixed+n+1 {
		return fmt.Errorf("securestore: header of %d bytes is damaged: it ends inside the unlock method or has no wrapped key", len(b))
	}
	s.method = string(b[fixed : fixed+n])
	s.wrapped = bytes.Clone(b[fixed+n:])
	return nil
}

// Unlock opens the data key with unlock after Lock or an idle timeout. A
// wrong passphrase or key returns an error wrapping ErrWrongKey and leaves
// the store locked.
func (s *Store) Unlock(ctx context.Context, unlock Unlocker) error {
	if m := unlock.Method(); m != s.method {
		return fmt.Errorf("%w: it was locked with a %s, not a %s", ErrWrongKey, s.method, m)
	}
	dataKey, err := unlock.UnwrapKey(ctx, s.wrapped, s.wrapAD())
	if errors.Is(err, ErrWrongKey) {
		return fmt.Errorf("%w: check the %s and try again", ErrWrongKey, s.method)
	}
	if err != nil {
		return fmt.Errorf("securestore: unlock with %s: %w", s.method, err)
	}
	if len(dataKey) != dataKeySize {
		clear(dataKey)
		return fmt.Errorf("securestore: unwrapped data key of %d bytes, want %d: the header is damaged", len(dataKey), dataKeySize)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		clear(dataKey)
		return ErrClosed
	}
	s.lockLocked()
	return s.setKeyLocked(dataKey)
}

func (s *Store) setKeyLocked(dataKey []byte) error {
	valueKey := make([]byte, chacha20poly1305.KeySize)
	defer clear(valueKey)
	if _, err := io.ReadFull(hkdf.New(sha256.New, dataKey, nil, []byte(labelValueKey)), valueKey); err != nil {
		clear(dataKey)
		return fmt.Errorf("securestore: derive value key: %w", err)
	}
	aead, err := chacha20poly1305.NewX(valueKey)
	if err != nil {
		clear(dataKey)
		return fmt.Errorf("securestore: create cipher: %w", err)
	}
	s.dataKey, s.aead = dataKey, aead
	s.lastUse = s.clock.Now()
	if s.idle > 0 {
		s.armLocked(s.idle)
	}
	return nil
}

// Lock zeroes the data key now. Get, Write and Scan return ErrLocked until
// Unlock succeeds; calls already running finish.
func (s *Store) Lock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lockLocked()
}

// Locked reports whether the data key is zeroed.
func (s *Store) Locked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.aead == nil
}

func (s *Store) lockLocked() {
	clear(s.dataKey)
	s.dataKey, s.aead = nil, nil
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.timerEpoch++
}

func (s *Store) armLocked(d time.Duration) {
	s.timerEpoch++
	epoch := s.timerEpoch
	s.timer = s.clock.AfterFunc(d, func() { s.onIdleTimer(epoch) })
}

// onIdleTimer locks the store if it has been idle for IdleTimeout, and
// otherwise sets the timer again for the time that is left.
func (s *Store) onIdleTimer(epoch uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch != s.timerEpoch || s.aead == nil {
		return
	}
	s.timer = nil
	if s.inFlight > 0 {
		s.armLocked(s.idle)
		return
	}
	idleFor := s.clock.Now().Sub(s.lastUse)
	if idleFor >= s.idle {
		s.lockLocked()
		return
	}
	s.armLocked(s.idle - idleFor)
}

// begin returns the cipher for one Get, Write or Scan, and counts the call
// as running until end. It locks the store first if it has been idle too
// long, which covers a timer that has not fired yet.
func (s *Store) begin() (cipher.AEAD, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if s.aead == nil {
		return nil, ErrLocked
	}
	now := s.clock.Now()
	if s.idle > 0 && s.inFlight == 0 && now.Sub(s.lastUse) >= s.idle {
		s.lockLocked()
		return nil, ErrLocked
	}
	s.inFlight++
	s.lastUse = now
	return s.aead, nil
}

func (s *Store) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
	s.lastUse = s.clock.Now()
}

func isReserved(key []byte) bool { return bytes.HasPrefix(key, []byte(ReservedPrefix)) }

func (s *Store) valueAD(key []byte) []byte {
	ad := make([]byte, 0, len(domainValue)+storeIDSize+len(key))
	ad = append(ad, domainValue...)
	ad = append(ad, s.storeID[:]...)
	return append(ad, key...)
}

// seal returns version, nonce and ciphertext.
func (s *Store) seal(aead cipher.AEAD, key, value []byte) ([]byte, error) {
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(value)+aead.Overhead())
	out[0] = formatVersion
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		return nil, fmt.Errorf("securestore: read random nonce: %w", err)
	}
	return aead.Seal(out, out[1:], value, s.valueAD(key)), nil
}

func (s *Store) open(aead cipher.AEAD, key, stored []byte) ([]byte, error) {
	if len(stored) < 1+aead.NonceSize()+aead.Overhead() || stored[0] != formatVersion {
		return nil, fmt.Errorf("%w: value of key %x is %d bytes without a valid version byte", ErrCorrupt, key, len(stored))
	}
	nonce, ciphertext := stored[1:1+aead.NonceSize()], stored[1+aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, ciphertext, s.valueAD(key))
	if err != nil {
		return nil, fmt.Errorf("%w: value of key %x was changed, damaged or moved from another key", ErrCorrupt, key)
	}
	if plain == nil {
		plain = []byte{}
	}
	return plain, nil
}

// Get implements client.Store.
func (s *Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	if isReserved(key) {
		return nil, fmt.Errorf("%w: %q", ErrReservedKey, key)
	}
	aead, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer s.end()

	stored, err := s.inner.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return s.open(aead, key, stored)
}

// Write implements client.Store. It encrypts every value of b before it
// passes any of them to the inner store.
func (s *Store) Write(ctx context.Context, b *client.Batch) error {
	for _, op := range b.Ops {
		if isReserved(op.Key) {
			return fmt.Errorf("%w: %q", ErrReservedKey, op.Key)
		}
	}
	aead, err := s.begin()
	if err != nil {
		return err
	}
	defer s.end()

	enc := &client.Batch{Ops: make([]client.BatchOp, 0, len(b.Ops))}
	for _, op := range b.Ops {
		if op.Delete {
			enc.Ops = append(enc.Ops, client.BatchOp{Key: op.Key, Delete: true})
			continue
		}
		sealed, err := s.seal(aead, op.Key, op.Value)
		if err != nil {
			return err
		}
		enc.Ops = append(enc.Ops, client.BatchOp{Key: op.Key, Value: sealed})
	}
	return s.inner.Write(ctx, enc)
}

// Scan implements client.Store. It skips the store's own reserved keys.
func (s *Store) Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error {
	aead, err := s.begin()
	if err != nil {
		return err
	}
	defer s.end()

	return s.inner.Scan(ctx, prefix, func(key, stored []byte) error {
		if isReserved(key) {
			return nil
		}
		plain, err := s.open(aead, key, stored)
		if err != nil {
			return err
		}
		return fn(key, plain)
	})
}

// Close zeroes the data key and closes the inner store.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.lockLocked()
	s.mu.Unlock()
	return s.inner.Close()
}
