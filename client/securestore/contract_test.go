package securestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"

	"interlude/client"
	"interlude/client/badgerstore"
)

// storeContract checks the behaviour of client.Store that the client relies
// on. open returns a new, empty store, which storeContract closes.
func storeContract(t *testing.T, open func(t *testing.T) client.Store) {
	ctx := context.Background()
	put := func(t *testing.T, s client.Store, kv ...string) {
		t.Helper()
		var b client.Batch
		for i := 0; i < len(kv); i += 2 {
			b.Put([]byte(kv[i]), []byte(kv[i+1]))
		}
		if err := s.Write(ctx, &b); err != nil {
			t.Fatal(err)
		}
	}
	get := func(t *testing.T, s client.Store, key string) (string, error) {
		t.Helper()
		v, err := s.Get(ctx, []byte(key))
		return string(v), err
	}
	scan := func(t *testing.T, s client.Store, prefix string) []string {
		t.Helper()
		var out []string
		err := s.Scan(ctx, []byte(prefix), func(k, v []byte) error {
			out = append(out, string(k)+"="+string(v))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	run := func(name string, f func(t *testing.T, s client.Store)) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			f(t, s)
		})
	}

	run("get missing key", func(t *testing.T, s client.Store) {
		if _, err := get(t, s, "nope"); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("err = %v, want client.ErrNotFound", err)
		}
	})
	run("put then get", func(t *testing.T, s client.Store) {
		put(t, s, "a", "1", "b", "")
		if v, err := get(t, s, "a"); err != nil || v != "1" {
			t.Errorf("a = %q, %v; want \"1\"", v, err)
		}
		if v, err := get(t, s, "b"); err != nil || v != "" {
			t.Errorf("b = %q, %v; want an empty value", v, err)
		}
	})
	run("overwrite", func(t *testing.T, s client.Store) {
		put(t, s, "a", "1")
		put(t, s, "a", "2")
		if v, _ := get(t, s, "a"); v != "2" {
			t.Errorf("a = %q, want \"2\"", v)
		}
	})
	run("batch of puts and deletes", func(t *testing.T, s client.Store) {
		put(t, s, "a", "1", "b", "2")
		var b client.Batch
		b.Del([]byte("a"))
		b.Put([]byte("c"), []byte("3"))
		b.Put([]byte("d"), []byte("4"))
		b.Del([]byte("d")) // later ops win
		b.Del([]byte("never-written"))
		if err := s.Write(ctx, &b); err != nil {
			t.Fatal(err)
		}
		if got, want := scan(t, s, ""), []string{"b=2", "c=3"}; !slices.Equal(got, want) {
			t.Errorf("after batch: %q, want %q", got, want)
		}
	})
	run("scan by prefix in byte order", func(t *testing.T, s client.Store) {
		put(t, s, "d/2", "x", "d/1/b", "y", "e", "z", "d/1\xff", "w", "d/1/a", "v", "d/10", "u", "c", "t")
		got := scan(t, s, "d/1")
		want := []string{"d/1/a=v", "d/1/b=y", "d/10=u", "d/1\xff=w"}
		if !slices.Equal(got, want) {
			t.Errorf("scan d/1 = %q, want %q", got, want)
		}
		if got := scan(t, s, "f"); len(got) != 0 {
			t.Errorf("scan f = %q, want nothing", got)
		}
		all := scan(t, s, "")
		if len(all) != 7 || !sort.StringsAreSorted(all) {
			t.Errorf("scan of everything = %q, want 7 keys in order", all)
		}
	})
	run("scan stops at callback error", func(t *testing.T, s client.Store) {
		put(t, s, "k1", "1", "k2", "2", "k3", "3")
		stop := errors.New("stop here")
		var calls int
		err := s.Scan(ctx, []byte("k"), func(_, _ []byte) error {
			calls++
			return stop
		})
		if !errors.Is(err, stop) {
			t.Errorf("err = %v, want the callback's error", err)
		}
		if calls != 1 {
			t.Errorf("callback ran %d times, want 1", calls)
		}
	})
	run("values are copies", func(t *testing.T, s client.Store) {
		value := []byte("original")
		var b client.Batch
		b.Put([]byte("k"), value)
		if err := s.Write(ctx, &b); err != nil {
			t.Fatal(err)
		}
		copy(value, "XXXXXXXX")
		got, err := s.Get(ctx, []byte("k"))
		if err != nil || string(got) != "original" {
			t.Fatalf("after changing the written slice: %q, %v", got, err)
		}
		copy(got, "YYYYYYYY")
		if again, _ := get(t, s, "k"); again != "original" {
			t.Errorf("after changing the returned slice: %q", again)
		}
	})
	run("concurrent writers", func(t *testing.T, s client.Store) {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 25 {
					var b client.Batch
					b.Put(fmt.Appendf(nil, "w%d/%02d", w, i), []byte("v"))
					if err := s.Write(ctx, &b); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if n := len(scan(t, s, "w")); n != 100 {
			t.Errorf("%d keys after concurrent writes, want 100", n)
		}
	})
}

func openBadger(t *testing.T, dir string) *badgerstore.Store {
	t.Helper()
	s, err := badgerstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testUnlocker() *RawKeyUnlocker { return NewRawKeyUnlocker([32]byte{1, 2, 3}) }

func TestContractBadger(t *testing.T) {
	storeContract(t, func(t *testing.T) client.Store { return openBadger(t, t.TempDir()) })
}

func TestContractSecureBadger(t *testing.T) {
	storeContract(t, func(t *testing.T) client.Store {
		s, err := Open(context.Background(), openBadger(t, t.TempDir()), testUnlocker(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestContractSecureMemory(t *testing.T) {
	storeContract(t, func(t *testing.T) client.Store {
		s, err := Open(context.Background(), newMemStore(), testUnlocker(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// memStore is a client.Store in memory, for tests that change the stored
// bytes by hand.
type memStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemStore() *memStore { return &memStore{m: map[string][]byte{}} }

func (s *memStore) Get(_ context.Context, key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[string(key)]
	if !ok {
		return nil, client.ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (s *memStore) Write(_ context.Context, b *client.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range b.Ops {
		if op.Delete {
			delete(s.m, string(op.Key))
		} else {
			s.m[string(op.Key)] = bytes.Clone(op.Value)
		}
	}
	return nil
}

func (s *memStore) Scan(_ context.Context, prefix []byte, fn func(key, value []byte) error) error {
	s.mu.Lock()
	var keys []string
	for k := range s.m {
		if bytes.HasPrefix([]byte(k), prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	values := make([][]byte, len(keys))
	for i, k := range keys {
		values[i] = bytes.Clone(s.m[k])
	}
	s.mu.Unlock()

	for i, k := range keys {
		if err := fn([]byte(k), values[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *memStore) Close() error { return nil }

// raw returns a copy of everything in the store.
func (s *memStore) raw() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.m {
		out[k] = string(v)
	}
	return out
}
