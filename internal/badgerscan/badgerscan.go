// Package badgerscan reads every record of a closed Badger database, for
// tests that check what a relay stored. Badger compresses its table
// files, so a scan of the files alone can miss bytes that a record holds.
package badgerscan

import (
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Records returns every key and value of the Badger database in dir, one
// after another, with every version Badger still holds, deleted ones
// included, read through Badger in read-only mode. The database must not
// be open elsewhere.
func Records(dir string) ([]byte, error) {
	db, err := badger.Open(badger.DefaultOptions(dir).WithReadOnly(true).WithLogger(nil))
	if err != nil {
		return nil, fmt.Errorf("badgerscan: open %q read-only: %w", dir, err)
	}
	defer db.Close()
	var all []byte
	err = db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{AllVersions: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			all = append(append(all, it.Item().Key()...), v...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("badgerscan: read %q: %w", dir, err)
	}
	return all, nil
}
