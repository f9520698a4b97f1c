package client_test

import (
	"context"
	"errors"
	"testing"

	"interlude/client"
)

// TestMemoryStoreBasics checks puts, deletes, ordered prefix scans and
// that values handed out are copies.
func TestMemoryStoreBasics(t *testing.T) {
	ctx := context.Background()
	s := client.NewMemoryStore()
	var b client.Batch
	b.Put([]byte("d/b"), []byte("2"))
	b.Put([]byte("d/a"), []byte("1"))
	b.Put([]byte("x/a"), []byte("3"))
	if err := s.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}

	var keys []string
	err := s.Scan(ctx, []byte("d/"), func(k, v []byte) error {
		keys = append(keys, string(k)+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0] != "d/a=1" || keys[1] != "d/b=2" {
		t.Errorf("scan of d/ = %v, want [d/a=1 d/b=2]", keys)
	}

	v, err := s.Get(ctx, []byte("x/a"))
	if err != nil || string(v) != "3" {
		t.Fatalf("Get x/a = %q, %v", v, err)
	}
	v[0] = 'z'
	if again, _ := s.Get(ctx, []byte("x/a")); string(again) != "3" {
		t.Errorf("changing a returned value changed the store: %q", again)
	}
	b = client.Batch{}
	b.Del([]byte("x/a"))
	if err := s.Write(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, []byte("x/a")); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Get after delete: %v, want ErrNotFound", err)
	}
}
