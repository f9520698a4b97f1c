// Package badgerstore is the native client.Store: a Badger database in a
// folder of the device's profile.
package badgerstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"interlude/client"
)

// Store is a client.Store over Badger. Writes are synced to disk before
// Write returns.
type Store struct {
	db *badger.DB
}

// Open opens or creates the store in dir.
func Open(dir string) (*Store, error) {
	opts := badger.DefaultOptions(dir).
		WithSyncWrites(true).
		WithLogger(nil).
		// A journal store is small: keep Badger's memory and files modest
		// so a profile costs little on a laptop.
		WithMemTableSize(8 << 20).
		WithValueLogFileSize(64 << 20).
		WithNumMemtables(2).
		WithBlockCacheSize(8 << 20)
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("badgerstore: open %s: %w (is another interlude process using this profile?)", dir, err)
	}
	return &Store{db: db}, nil
}

// Get implements client.Store.
func (s *Store) Get(_ context.Context, key []byte) ([]byte, error) {
	var value []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		value, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, client.ErrNotFound
	}
	return value, err
}

// Write implements client.Store. A batch too large for one Badger
// transaction fails whole, so a caller never sees half a batch applied.
func (s *Store) Write(_ context.Context, b *client.Batch) error {
	return s.db.Update(func(txn *badger.Txn) error {
		for _, op := range b.Ops {
			var err error
			if op.Delete {
				err = txn.Delete(op.Key)
			} else {
				err = txn.Set(op.Key, op.Value)
			}
			if err != nil {
				return fmt.Errorf("badgerstore: write key of %d bytes: %w", len(op.Key), err)
			}
		}
		return nil
	})
}

// Scan implements client.Store.
func (s *Store) Scan(_ context.Context, prefix []byte, fn func(key, value []byte) error) error {
	return s.db.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefix
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
			item := it.Item()
			value, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if err := fn(bytes.Clone(item.Key()), value); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close implements client.Store.
func (s *Store) Close() error { return s.db.Close() }
