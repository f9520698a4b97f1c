package securestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"interlude/client"
	"interlude/client/keyring"
)

// randomMarker returns text that appears nowhere by chance and that
// Badger's Snappy compression stores as is, because it does not repeat.
func randomMarker(t *testing.T) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "PLAINTEXT-MARKER-" + hex.EncodeToString(b)
}

// filesContain reports whether any file under dir contains marker.
func filesContain(t *testing.T, dir, marker string) bool {
	t.Helper()
	var found bool
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(marker)) {
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func rawBadger(t *testing.T, dir string) map[string]string {
	t.Helper()
	s := openBadger(t, dir)
	defer s.Close()
	out := map[string]string{}
	err := s.Scan(context.Background(), nil, func(k, v []byte) error {
		out[string(k)] = string(v)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBadgerFilesHoldNoPlaintext(t *testing.T) {
	ctx := context.Background()
	marker := randomMarker(t)
	key := []byte("d/0123456789abcdef/state")

	// Control: the same write to a plain Badger store leaves the marker in
	// its files, so the search below can find it.
	plainDir := t.TempDir()
	plain := openBadger(t, plainDir)
	var b client.Batch
	b.Put(key, []byte(marker))
	if err := plain.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if err := plain.Close(); err != nil {
		t.Fatal(err)
	}
	if !filesContain(t, plainDir, marker) {
		t.Fatal("control failed: the plaintext marker is not in a plain Badger store's files")
	}

	// Through securestore, the files do not contain it.
	dir := t.TempDir()
	right := PassphraseUnlocker{Passphrase: keyring.NewPassphrase("a long passphrase for the test")}
	s, err := Open(ctx, openBadger(t, dir), right, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if filesContain(t, dir, marker) {
		t.Fatal("the plaintext marker is in the encrypted store's files")
	}

	// A wrong passphrase fails clearly and changes nothing.
	before := rawBadger(t, dir)
	if _, ok := before[string(key)]; !ok {
		t.Fatal("the key is not in the clear in the inner store")
	}
	inner := openBadger(t, dir)
	wrong := PassphraseUnlocker{Passphrase: keyring.NewPassphrase("a long passphrase for the tesT")}
	if _, err := Open(ctx, inner, wrong, Options{}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong passphrase: err = %v, want ErrWrongKey", err)
	}
	if err := inner.Close(); err != nil {
		t.Fatal(err)
	}
	if after := rawBadger(t, dir); !maps.Equal(before, after) {
		t.Fatal("opening with a wrong passphrase changed the stored data")
	}

	// The right passphrase reads the value back.
	s, err = Open(ctx, openBadger(t, dir), right, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != marker {
		t.Errorf("read back %q, want %q", got, marker)
	}
}

// fakeClock is a Clock whose time moves only when Advance is called.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clock *fakeClock
	at    time.Time
	f     func()
	done  bool // fired or stopped
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// Advance moves time forward by d and runs every timer that is due, in
// the calling goroutine, earliest first.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var next *fakeTimer
		for _, t := range c.timers {
			if !t.done && !t.at.After(c.now) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.mu.Unlock()
			return
		}
		next.done = true
		c.mu.Unlock()
		next.f()
	}
}

// pending returns the number of timers that have neither fired nor stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int
	for _, t := range c.timers {
		if !t.done {
			n++
		}
	}
	return n
}

func putOne(t *testing.T, s client.Store, key, value string) {
	t.Helper()
	var b client.Batch
	b.Put([]byte(key), []byte(value))
	if err := s.Write(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}

func TestIdleLock(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	const idle = 5 * time.Minute
	s, err := Open(ctx, newMemStore(), testUnlocker(), Options{IdleTimeout: idle, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	putOne(t, s, "k", "v")

	// Each use restarts the idle period.
	for range 3 {
		clock.Advance(idle - time.Second)
		if _, err := s.Get(ctx, []byte("k")); err != nil {
			t.Fatalf("Get %v after the last use: %v", idle-time.Second, err)
		}
	}
	if s.Locked() {
		t.Fatal("store locked while in use")
	}

	// A full idle period with no use locks it and zeroes the data key.
	key := s.dataKey
	clock.Advance(idle)
	if !s.Locked() {
		t.Fatal("store still unlocked after the idle timeout")
	}
	if !bytes.Equal(key, make([]byte, dataKeySize)) {
		t.Error("the data key was not zeroed")
	}
	if clock.pending() != 0 {
		t.Errorf("%d idle timers still pending after the lock", clock.pending())
	}
	if _, err := s.Get(ctx, []byte("k")); !errors.Is(err, ErrLocked) {
		t.Errorf("Get: err = %v, want ErrLocked", err)
	}
	if err := s.Write(ctx, &client.Batch{}); !errors.Is(err, ErrLocked) {
		t.Errorf("Write: err = %v, want ErrLocked", err)
	}
	if err := s.Scan(ctx, nil, func(_, _ []byte) error { return nil }); !errors.Is(err, ErrLocked) {
		t.Errorf("Scan: err = %v, want ErrLocked", err)
	}

	// A wrong key leaves it locked; the right one unlocks it.
	if err := s.Unlock(ctx, NewRawKeyUnlocker([32]byte{9})); !errors.Is(err, ErrWrongKey) {
		t.Errorf("Unlock with a wrong key: err = %v, want ErrWrongKey", err)
	}
	if !s.Locked() {
		t.Error("a wrong key unlocked the store")
	}
	if err := s.Unlock(ctx, testUnlocker()); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Get(ctx, []byte("k")); err != nil || string(v) != "v" {
		t.Errorf("Get after Unlock = %q, %v", v, err)
	}
	clock.Advance(idle)
	if !s.Locked() {
		t.Error("store did not lock again after Unlock and another idle timeout")
	}
}

func TestIdleLockWithoutTimerFiring(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s, err := Open(ctx, newMemStore(), testUnlocker(), Options{IdleTimeout: time.Minute, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Time passes but the timer has not run yet, as when a device wakes
	// from sleep. The next use must still see the store as idle.
	clock.mu.Lock()
	clock.now = clock.now.Add(time.Hour)
	clock.mu.Unlock()
	if _, err := s.Get(ctx, []byte("k")); !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
	if !s.Locked() {
		t.Error("data key not zeroed")
	}
}

func TestIdleLockWaitsForRunningScan(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	const idle = time.Minute
	s, err := Open(ctx, newMemStore(), testUnlocker(), Options{IdleTimeout: idle, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	putOne(t, s, "a", "1")
	putOne(t, s, "b", "2")
	putOne(t, s, "c", "3")

	// The caller spends longer than the idle timeout on each key.
	var got []string
	err = s.Scan(ctx, nil, func(k, v []byte) error {
		got = append(got, string(k)+"="+string(v))
		clock.Advance(2 * idle)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Errorf("scan returned %q, want 3 keys", got)
	}
	if s.Locked() {
		t.Error("store locked during or right after a running Scan")
	}
	clock.Advance(idle)
	if !s.Locked() {
		t.Error("store did not lock after the Scan ended and an idle timeout passed")
	}
}

func TestLockAndClose(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, newMemStore(), testUnlocker(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	putOne(t, s, "k", "v")
	s.Lock()
	if _, err := s.Get(ctx, []byte("k")); !errors.Is(err, ErrLocked) {
		t.Errorf("Get after Lock: err = %v, want ErrLocked", err)
	}
	if err := s.Unlock(ctx, testUnlocker()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, []byte("k")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: err = %v, want ErrClosed", err)
	}
	if err := s.Unlock(ctx, testUnlocker()); !errors.Is(err, ErrClosed) {
		t.Errorf("Unlock after Close: err = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestKeysClearValuesEncrypted(t *testing.T) {
	ctx := context.Background()
	inner := newMemStore()
	s, err := Open(ctx, inner, testUnlocker(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	putOne(t, s, "d/doc/state", "the session notes")
	putOne(t, s, "d/doc/rec/1", "the session notes")

	raw := inner.raw()
	if _, ok := raw[headerKey]; !ok {
		t.Error("no header in the inner store")
	}
	a, b := raw["d/doc/state"], raw["d/doc/rec/1"]
	if a == "" || b == "" {
		t.Fatalf("keys are not in the clear: %q", keysOf(raw))
	}
	if strings.Contains(a, "session") || strings.Contains(b, "session") {
		t.Error("a stored value contains plaintext")
	}
	if a == b {
		t.Error("equal values are stored as equal ciphertexts")
	}
}

func keysOf(m map[string]string) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func TestTamperedValueRejected(t *testing.T) {
	ctx := context.Background()
	inner := newMemStore()
	s, err := Open(ctx, inner, testUnlocker(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	putOne(t, s, "d/a", "value a")
	putOne(t, s, "d/b", "value b")
	raw := inner.raw()

	// A flipped bit.
	flipped := []byte(raw["d/a"])
	flipped[len(flipped)-1] ^= 1
	inner.m["d/a"] = flipped
	if _, err := s.Get(ctx, []byte("d/a")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("flipped bit: err = %v, want ErrCorrupt", err)
	}
	// A value moved to another key.
	inner.m["d/a"] = []byte(raw["d/b"])
	if _, err := s.Get(ctx, []byte("d/a")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("moved value: err = %v, want ErrCorrupt", err)
	}
	if err := s.Scan(ctx, []byte("d/"), func(_, _ []byte) error { return nil }); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Scan over a moved value: err = %v, want ErrCorrupt", err)
	}
	// A value copied from another store with the same unlock key.
	other, err := Open(ctx, newMemStore(), testUnlocker(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	putOne(t, other, "d/a", "other store")
	inner.m["d/a"] = other.inner.(*memStore).m["d/a"]
	if _, err := s.Get(ctx, []byte("d/a")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("value from another store: err = %v, want ErrCorrupt", err)
	}
	// A short value.
	inner.m["d/a"] = []byte{1, 2}
	if _, err := s.Get(ctx, []byte("d/a")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short value: err = %v, want ErrCorrupt", err)
	}
}

func TestReservedKeys(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, newMemStore(), testUnlocker(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var b client.Batch
	b.Put([]byte("ok"), []byte("1"))
	b.Put([]byte(headerKey), []byte("overwrite the header"))
	if err := s.Write(ctx, &b); !errors.Is(err, ErrReservedKey) {
		t.Errorf("Write: err = %v, want ErrReservedKey", err)
	}
	if _, err := s.Get(ctx, []byte("ok")); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("a batch with a reserved key was partly applied: err = %v", err)
	}
	if _, err := s.Get(ctx, []byte(headerKey)); !errors.Is(err, ErrReservedKey) {
		t.Errorf("Get: err = %v, want ErrReservedKey", err)
	}
	var n int
	if err := s.Scan(ctx, nil, func(_, _ []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("Scan of an empty store saw %d keys, want 0", n)
	}
}

func TestOpenRejectsPlaintextStore(t *testing.T) {
	inner := newMemStore()
	inner.m["identity"] = []byte("plaintext")
	if _, err := Open(context.Background(), inner, testUnlocker(), Options{}); !errors.Is(err, ErrNotEncrypted) {
		t.Fatalf("err = %v, want ErrNotEncrypted", err)
	}
	if raw := inner.raw(); len(raw) != 1 {
		t.Errorf("Open wrote to the store: %d keys, want 1", len(raw))
	}
}

func TestOpenWithOtherMethod(t *testing.T) {
	ctx := context.Background()
	inner := newMemStore()
	s, err := Open(ctx, inner, testUnlocker(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Lock()

	_, err = Open(ctx, inner, PassphraseUnlocker{Passphrase: keyring.NewPassphrase("pw")}, Options{})
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "raw key") {
		t.Errorf("err = %v, want ErrWrongKey naming the raw key method", err)
	}
}

func TestPassphraseUnlockerRejectsWeakParams(t *testing.T) {
	inner := newMemStore()
	weak := PassphraseUnlocker{
		Passphrase: keyring.NewPassphrase("pw"),
		Params:     keyring.Argon2Params{Time: 1, MemoryKiB: 8 * 1024, Threads: 1, Salt: make([]byte, 16)},
	}
	_, err := Open(context.Background(), inner, weak, Options{})
	if !errors.Is(err, keyring.ErrArgon2Params) {
		t.Fatalf("err = %v, want keyring.ErrArgon2Params", err)
	}
	if raw := inner.raw(); len(raw) != 0 {
		t.Errorf("Open wrote %d keys after failing", len(raw))
	}
}

func TestDamagedHeader(t *testing.T) {
	ctx := context.Background()
	inner := newMemStore()
	s, err := Open(ctx, inner, testUnlocker(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Lock()
	header := inner.raw()[headerKey]

	for name, h := range map[string]string{
		"empty":          "",
		"other magic":    "XXSS" + header[4:],
		"version 2":      "ILSS\x02" + header[5:],
		"no wrapped key": header[:4+1+16+1+len("raw key")],
		"changed id":     header[:5] + "x" + header[6:],
	} {
		inner.m[headerKey] = []byte(h)
		if _, err := Open(ctx, inner, testUnlocker(), Options{}); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

func TestConcurrentUseAndLock(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, newMemStore(), testUnlocker(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var wg sync.WaitGroup
	for w := range 3 {
		wg.Go(func() {
			for i := range 50 {
				var b client.Batch
				b.Put(fmt.Appendf(nil, "w%d/%d", w, i), []byte("v"))
				if err := s.Write(ctx, &b); err != nil && !errors.Is(err, ErrLocked) {
					t.Error(err)
				}
				if _, err := s.Get(ctx, fmt.Appendf(nil, "w%d/%d", w, i)); err != nil && !errors.Is(err, ErrLocked) && !errors.Is(err, client.ErrNotFound) {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			s.Lock()
			if err := s.Unlock(ctx, testUnlocker()); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
}

func TestRawKeyUnlockerRedacted(t *testing.T) {
	key := [32]byte{0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef}
	u := NewRawKeyUnlocker(key)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "u", u, "v", *u)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "u", u, "v", *u)
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%d", "%s"} {
		fmt.Fprintf(&buf, verb+"\n", u)
		fmt.Fprintf(&buf, verb+"\n", struct{ U *RawKeyUnlocker }{u})
	}
	out := buf.String()
	for _, form := range []string{hex.EncodeToString(key[:8]), "222 173 190 239", "0xde, 0xad"} {
		if strings.Contains(out, form) {
			t.Errorf("output contains the key as %q:\n%s", form, out)
		}
	}
	if !strings.Contains(out, "[redacted]") {
		t.Errorf("output does not say [redacted]:\n%s", out)
	}
}
