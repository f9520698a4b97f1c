package client

import (
	"context"
	"slices"
	"testing"
)

func TestSetTextFromKeepsRemoteEdits(t *testing.T) {
	cases := []struct {
		name                string
		base, remote, local string
		want                string
	}{
		{"no remote change", "one two", "one two", "one two three", "one two three"},
		{"local after remote", "one two", "ZERO one two", "one two three", "ZERO one two three"},
		{"local before remote", "one two", "one two three", "zero one two", "zero one two three"},
		{"local delete before remote insert", "one two three", "one two three four", "one three", "one three four"},
		{"both in one place", "one two", "one TWO", "one 2", "one TWO2"},
		{"unicode", "café ☕", "café ☕ 😀", "le café ☕", "le café ☕ 😀"},
		{"remote deleted everything", "abc", "", "abcd", "d"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := newMemoryClient(t)
			doc, err := c.CreateDocument(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SetText(ctx, doc, tc.base); err != nil {
				t.Fatal(err)
			}
			// The remote change arrives while the editor still shows base.
			if err := c.SetText(ctx, doc, tc.remote); err != nil {
				t.Fatal(err)
			}
			if err := c.SetTextFrom(ctx, doc, tc.base, tc.local); err != nil {
				t.Fatal(err)
			}
			got, err := c.Text(doc)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("text = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDiffSplice(t *testing.T) {
	s := diffSplice([]rune("abcdef"), []rune("abXYef"))
	if s.pos != 2 || s.count != 2 || s.insert != "XY" || s.inserted != 2 {
		t.Errorf("diffSplice = %+v, want pos 2, count 2, insert XY", s)
	}
	s = diffSplice([]rune("aaa"), []rune("aaaa"))
	if s.pos != 3 || s.count != 0 || s.insert != "a" {
		t.Errorf("diffSplice of a repeated letter = %+v, want an insert of one letter at the end", s)
	}
}

// memoryStore is a Store in a map, for tests that need no disk.
type memoryStore struct{ m map[string][]byte }

func (s *memoryStore) Get(_ context.Context, key []byte) ([]byte, error) {
	v, ok := s.m[string(key)]
	if !ok {
		return nil, ErrNotFound
	}
	return v, nil
}

func (s *memoryStore) Write(_ context.Context, b *Batch) error {
	for _, op := range b.Ops {
		if op.Delete {
			delete(s.m, string(op.Key))
		} else {
			s.m[string(op.Key)] = append([]byte(nil), op.Value...)
		}
	}
	return nil
}

func (s *memoryStore) Scan(_ context.Context, prefix []byte, fn func(key, value []byte) error) error {
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		if len(k) >= len(prefix) && k[:len(prefix)] == string(prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := fn([]byte(k), s.m[k]); err != nil {
			return err
		}
	}
	return nil
}

func (s *memoryStore) Close() error { return nil }

func newMemoryClient(t *testing.T) *Client {
	t.Helper()
	id, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(context.Background(), Config{Store: &memoryStore{m: map[string][]byte{}}, Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
