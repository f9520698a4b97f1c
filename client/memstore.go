package client

import (
	"bytes"
	"context"
	"slices"
	"strings"
	gosync "sync"
)

// MemoryStore is a Store that keeps everything in memory and nothing on
// disk. It suits a client that must leave no trace on the machine, such
// as the recovery device, which runs only long enough to link a new one.
// Its Write is durable only as long as the process lives.
type MemoryStore struct {
	mu     gosync.Mutex
	values map[string][]byte
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{values: make(map[string][]byte)}
}

// Get returns a copy of key's value, or ErrNotFound.
func (s *MemoryStore) Get(_ context.Context, key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.values[string(key)]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(v), nil
}

// Write applies b, all of it, under one lock.
func (s *MemoryStore) Write(_ context.Context, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range b.Ops {
		if op.Delete {
			delete(s.values, string(op.Key))
		} else {
			s.values[string(op.Key)] = bytes.Clone(op.Value)
		}
	}
	return nil
}

// Scan calls fn for each key with prefix in key order, on a copy taken
// when Scan starts, so fn may write to the store.
func (s *MemoryStore) Scan(_ context.Context, prefix []byte, fn func(key, value []byte) error) error {
	s.mu.Lock()
	var keys []string
	for k := range s.values {
		if strings.HasPrefix(k, string(prefix)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	values := make([][]byte, len(keys))
	for i, k := range keys {
		values[i] = bytes.Clone(s.values[k])
	}
	s.mu.Unlock()
	for i, k := range keys {
		if err := fn([]byte(k), values[i]); err != nil {
			return err
		}
	}
	return nil
}

// Close drops every value.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.values)
	return nil
}
