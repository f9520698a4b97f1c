//go:build js && wasm

package idbstore

// These tests need a browser's IndexedDB. The browser test in
// tests/browser compiles them with GOOS=js GOARCH=wasm and runs the test
// binary in headless Chromium.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"strings"
	"syscall/js"
	"testing"

	"interlude/client"
)

var quotaBytes = flag.Int("quota-bytes", 0, "storage quota in bytes that the test harness set for this origin; 0 skips the quota test")

// openTemp opens a database that exists only for this test.
func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	name := fmt.Sprintf("idbstore-test-%s-%x", t.Name(), randomBytes(t, 4))
	s, err := Open(context.Background(), name)
	if err != nil {
		t.Fatalf("Open(%q): %v", name, err)
	}
	t.Cleanup(func() {
		s.Close()
		deleteDatabase(t, name)
	})
	return s, name
}

// deleteDatabase removes a test database so the origin's usage stays
// small for the quota test.
func deleteDatabase(t *testing.T, name string) {
	done := make(chan string, 1)
	req := js.Global().Get("indexedDB").Call("deleteDatabase", name)
	var onSuccess, onError, onBlocked js.Func
	onSuccess = js.FuncOf(func(js.Value, []js.Value) any { done <- ""; return nil })
	onError = js.FuncOf(func(js.Value, []js.Value) any { done <- "error"; return nil })
	onBlocked = js.FuncOf(func(js.Value, []js.Value) any { return nil })
	req.Set("onsuccess", onSuccess)
	req.Set("onerror", onError)
	req.Set("onblocked", onBlocked)
	if msg := <-done; msg != "" {
		t.Errorf("delete database %q: %s", name, msg)
	}
	onSuccess.Release()
	onError.Release()
	onBlocked.Release()
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func mustWrite(t *testing.T, s *Store, b *client.Batch) {
	t.Helper()
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func TestGetMissingKey(t *testing.T) {
	s, _ := openTemp(t)
	_, err := s.Get(context.Background(), []byte("missing"))
	if !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get of a missing key: %v, want client.ErrNotFound", err)
	}
}

func TestWriteThenGet(t *testing.T) {
	s, _ := openTemp(t)
	entries := map[string][]byte{
		"plain":             []byte("value"),
		"":                  []byte("empty key"),
		"\x00nul\x00":       {0, 1, 2, 0},
		"\xff\xfe":          []byte("high bytes"),
		"empty-value":       {},
		"binary\x80\x81key": randomBytes(t, 100),
	}
	var b client.Batch
	for k, v := range entries {
		b.Put([]byte(k), v)
	}
	mustWrite(t, s, &b)

	for k, want := range entries {
		got, err := s.Get(context.Background(), []byte(k))
		if err != nil {
			t.Errorf("Get(%x): %v", k, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Get(%x) = %x, want %x", k, got, want)
		}
	}
}

func TestWriteOverwritesAndDeletes(t *testing.T) {
	s, _ := openTemp(t)
	var b client.Batch
	b.Put([]byte("a"), []byte("1"))
	b.Put([]byte("b"), []byte("2"))
	mustWrite(t, s, &b)

	b = client.Batch{}
	b.Put([]byte("a"), []byte("3"))
	b.Del([]byte("b"))
	b.Del([]byte("never-written"))
	mustWrite(t, s, &b)

	got, err := s.Get(context.Background(), []byte("a"))
	if err != nil || string(got) != "3" {
		t.Errorf("Get(a) = %q, %v; want the overwritten value \"3\"", got, err)
	}
	if _, err := s.Get(context.Background(), []byte("b")); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Get(b) after delete: %v, want client.ErrNotFound", err)
	}
}

func TestWriteLastOpWins(t *testing.T) {
	s, _ := openTemp(t)
	var b client.Batch
	b.Put([]byte("k"), []byte("first"))
	b.Del([]byte("k"))
	b.Put([]byte("k"), []byte("last"))
	mustWrite(t, s, &b)

	got, err := s.Get(context.Background(), []byte("k"))
	if err != nil || string(got) != "last" {
		t.Errorf("Get(k) = %q, %v; want \"last\", the batch's final op", got, err)
	}
}

func TestWriteEmptyBatch(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.Write(context.Background(), &client.Batch{}); err != nil {
		t.Errorf("Write of an empty batch: %v", err)
	}
	if err := s.Write(context.Background(), nil); err != nil {
		t.Errorf("Write of a nil batch: %v", err)
	}
}

func TestWriteCanceledContext(t *testing.T) {
	s, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var b client.Batch
	b.Put([]byte("k"), []byte("v"))
	if err := s.Write(ctx, &b); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a canceled context: %v, want context.Canceled", err)
	}
	if _, err := s.Get(context.Background(), []byte("k")); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Get after a canceled Write: %v, want client.ErrNotFound", err)
	}
}

func TestLargeValue(t *testing.T) {
	s, _ := openTemp(t)
	want := randomBytes(t, 1<<20)
	var b client.Batch
	b.Put([]byte("large"), want)
	mustWrite(t, s, &b)

	got, err := s.Get(context.Background(), []byte("large"))
	if err != nil {
		t.Fatalf("Get(large): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Get(large) returned %d bytes that differ from the %d written", len(got), len(want))
	}
}

func TestScanPrefix(t *testing.T) {
	s, _ := openTemp(t)
	keys := []string{"", "a", "a\x00", "a\xff", "a\xff\xff", "ab", "b", "\xff", "\xff\xff", "\xff\xff\x00"}
	var b client.Batch
	for _, k := range keys {
		b.Put([]byte(k), []byte("v:"+k))
	}
	mustWrite(t, s, &b)

	// Byte order: a shorter key sorts before its extensions, and bytes
	// compare unsigned, so "ab" (0x61 0x62) sorts before "a\xff".
	tests := []struct {
		prefix string
		want   []string
	}{
		{"a", []string{"a", "a\x00", "ab", "a\xff", "a\xff\xff"}},
		{"a\xff", []string{"a\xff", "a\xff\xff"}},
		{"\xff", []string{"\xff", "\xff\xff", "\xff\xff\x00"}},
		{"\xff\xff", []string{"\xff\xff", "\xff\xff\x00"}},
		{"", []string{"", "a", "a\x00", "ab", "a\xff", "a\xff\xff", "b", "\xff", "\xff\xff", "\xff\xff\x00"}},
		{"c", nil},
	}
	for _, tt := range tests {
		var got []string
		err := s.Scan(context.Background(), []byte(tt.prefix), func(k, v []byte) error {
			if string(v) != "v:"+string(k) {
				t.Errorf("Scan(%x): key %x has value %q, want %q", tt.prefix, k, v, "v:"+string(k))
			}
			got = append(got, string(k))
			return nil
		})
		if err != nil {
			t.Errorf("Scan(%x): %v", tt.prefix, err)
			continue
		}
		if fmt.Sprintf("%x", got) != fmt.Sprintf("%x", tt.want) {
			t.Errorf("Scan(%x) keys = %x, want %x in byte order", tt.prefix, got, tt.want)
		}
	}
}

func TestScanStopsAtError(t *testing.T) {
	s, _ := openTemp(t)
	var b client.Batch
	for i := range 5 {
		b.Put([]byte{'k', byte(i)}, []byte{byte(i)})
	}
	mustWrite(t, s, &b)

	stop := errors.New("stop")
	calls := 0
	err := s.Scan(context.Background(), []byte("k"), func(k, v []byte) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("Scan returned %v, want the error fn returned", err)
	}
	if calls != 2 {
		t.Errorf("fn called %d times, want 2: Scan must stop at the first error", calls)
	}
}

func TestDataSurvivesReopen(t *testing.T) {
	s, name := openTemp(t)
	var b client.Batch
	b.Put([]byte("kept"), []byte("across connections"))
	mustWrite(t, s, &b)
	s.Close()

	reopened, err := Open(context.Background(), name)
	if err != nil {
		t.Fatalf("Open(%q) again: %v", name, err)
	}
	defer reopened.Close()
	got, err := reopened.Get(context.Background(), []byte("kept"))
	if err != nil || string(got) != "across connections" {
		t.Errorf("Get after reopen = %q, %v; want the value written before Close", got, err)
	}
}

func TestClosedStore(t *testing.T) {
	s, _ := openTemp(t)
	s.Close()
	if _, err := s.Get(context.Background(), []byte("k")); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close: %v, want ErrClosed", err)
	}
	var b client.Batch
	b.Put([]byte("k"), []byte("v"))
	if err := s.Write(context.Background(), &b); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	if err := s.Scan(context.Background(), nil, func(k, v []byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("Scan after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOpenEmptyName(t *testing.T) {
	if _, err := Open(context.Background(), ""); err == nil {
		t.Fatal("Open with an empty name succeeded, want an error")
	}
}

// TestQuotaExceeded writes more than the origin's quota in one batch and
// checks that the failure names the quota, that the batch left nothing
// behind, and that the store still takes small writes afterwards.
func TestQuotaExceeded(t *testing.T) {
	if *quotaBytes == 0 {
		t.Skip("run by tests/browser with -quota-bytes after it limits the origin's quota")
	}
	s, _ := openTemp(t)

	var b client.Batch
	b.Put([]byte("small-before"), []byte("v"))
	// Random bytes, so the browser cannot compress them below the quota.
	chunk := 1 << 20
	for i := 0; i*chunk <= 2**quotaBytes; i++ {
		b.Put([]byte(fmt.Sprintf("big-%03d", i)), randomBytes(t, chunk))
	}
	err := s.Write(context.Background(), &b)
	if err == nil {
		t.Fatalf("Write of more than the %d-byte quota succeeded, want QuotaExceededError", *quotaBytes)
	}
	if !errors.Is(err, ErrQuotaExceeded) {
		t.Fatalf("Write over quota: %v, want an error matching ErrQuotaExceeded", err)
	}
	var idbErr *Error
	if !errors.As(err, &idbErr) || idbErr.Name != "QuotaExceededError" {
		t.Errorf("Write over quota: %#v, want *Error with Name QuotaExceededError", err)
	}
	if !strings.Contains(err.Error(), "storage for this site is full") {
		t.Errorf("quota error %q does not tell the user what happened", err)
	}
	if _, err := s.Get(context.Background(), []byte("small-before")); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Get of a key from the failed batch: %v, want client.ErrNotFound: the batch must apply whole or not at all", err)
	}

	b = client.Batch{}
	b.Put([]byte("small-after"), []byte("v"))
	if err := s.Write(context.Background(), &b); err != nil {
		t.Errorf("small Write after the quota failure: %v; the store must stay writable", err)
	}
}
