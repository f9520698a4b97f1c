package client

import (
	"context"
	"errors"
)

// Store is the local key-value store of a client: Badger natively
// (package client/badgerstore), IndexedDB in the browser (package
// wasm/idbstore). Keys are compared as bytes.
//
// A Store must make a successful Write durable before it returns, because
// the client tells its user "saved on this device" once Write has returned.
type Store interface {
	// Get returns the value of key, or ErrNotFound.
	Get(ctx context.Context, key []byte) ([]byte, error)
	// Write applies every put and delete in b atomically.
	Write(ctx context.Context, b *Batch) error
	// Scan calls fn for each key that starts with prefix, in key order,
	// and stops at the first error fn returns.
	Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error
	// Close releases the store.
	Close() error
}

// ErrNotFound is returned by Store.Get for a missing key.
var ErrNotFound = errors.New("client: key not found")

// Batch is a set of writes applied together by Store.Write.
type Batch struct {
	Ops []BatchOp
}

// BatchOp is one put, or a delete when Delete is set.
type BatchOp struct {
	Key    []byte
	Value  []byte
	Delete bool
}

// Put adds a put of key to b.
func (b *Batch) Put(key, value []byte) {
	b.Ops = append(b.Ops, BatchOp{Key: key, Value: value})
}

// Del adds a delete of key to b.
func (b *Batch) Del(key []byte) {
	b.Ops = append(b.Ops, BatchOp{Key: key, Delete: true})
}
