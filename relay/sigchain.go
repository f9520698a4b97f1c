package relay

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"
	"github.com/vmihailenco/msgpack/v5"

	"interlude/sync/wire"
)

// Sigchains: the relay keeps each person's list of devices.
//
// A person's devices share a per-user key whose public half others use to
// address the person. The list of those devices, the sigchain, and the
// user seed sealed to each of them are stored here, so that a new device
// and anyone sharing with the person can fetch them. The client verifies
// every entry (package client/keyring). The relay does not link that
// code, so it only keeps order. An append names how many entries it
// builds on, so two devices cannot both add the next entry, and only a
// device that the chain's last append named as a writer may append. A
// relay that rolls a chain back or forks it is caught by the clients,
// which keep the chain they verified.

const (
	// maxChainEntries and maxChainBlobs bound one chain. A person adds or
	// revokes a device a few times a year, each a few entries and blobs,
	// and the client refuses longer chains too. With the size bounds
	// below, a whole chain fits one Chain reply.
	maxChainEntries = 4096
	maxChainBlobs   = 4096
	// maxChainEntry and maxChainBlob bound the size of one entry (335
	// bytes in the first format) and one sealed seed (about 130 bytes).
	maxChainEntry = 512
	maxChainBlob  = 256
	// maxChainPut bounds what one PutChain appends, and maxChainWriters
	// the devices it names.
	maxChainPut     = 256
	maxChainWriters = 256
)

// chainHead is the record of a chain's length, blob count and writers.
type chainHead struct {
	_msgpack struct{} `msgpack:",as_array"`
	Entries  uint64
	Blobs    uint64
	Writers  [][]byte
}

// errChainStale is returned by putChain when the chain does not hold the
// number of entries the request builds on.
type errChainStale struct{ have, from uint64 }

func (e *errChainStale) Error() string {
	return fmt.Sprintf("the relay holds %d entries of this sigchain, the request builds on %d: fetch the chain with GetChain and build the entry again", e.have, e.from)
}

// errChainWriter is returned by putChain for a device that may not append.
var errChainWriter = errors.New("this device is not one of the sigchain's writers")

func chainHeadKey(id []byte) []byte { return key(prefixChainHead, id) }

func chainEntryKey(id []byte, n uint64) []byte { return key(prefixChainEntry, id, be64(n)) }

func chainBlobKey(id []byte, n uint64) []byte { return key(prefixChainBlob, id, be64(n)) }

// putChain appends entries and blobs to chain id if it contains exactly from
// entries and device is one of its writers, and stores writers as the
// next writers.
func (s *store) putChain(id []byte, device deviceKey, from uint64, entries, blobs, writers [][]byte) error {
	return s.db.Update(func(txn *badger.Txn) error {
		var head chainHead
		item, err := txn.Get(chainHeadKey(id))
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			if from != 0 {
				return &errChainStale{0, from}
			}
			if len(entries) == 0 || !bytes.Equal(id, chainIDOf(entries[0])) {
				return errChainID
			}
			if !slices.ContainsFunc(writers, func(w []byte) bool { return bytes.Equal(w, device[:]) }) {
				return fmt.Errorf("%w: a new sigchain must name the device that starts it as a writer", errChainWriter)
			}
		case err != nil:
			return err
		default:
			if err := item.Value(func(v []byte) error { return msgpack.Unmarshal(v, &head) }); err != nil {
				return fmt.Errorf("decode the head of a stored sigchain: %w", err)
			}
			if head.Entries != from {
				return &errChainStale{head.Entries, from}
			}
			if !slices.ContainsFunc(head.Writers, func(w []byte) bool { return bytes.Equal(w, device[:]) }) {
				return errChainWriter
			}
		}
		if head.Entries+uint64(len(entries)) > maxChainEntries || head.Blobs+uint64(len(blobs)) > maxChainBlobs {
			return fmt.Errorf("%w: the sigchain would contain %d entries and %d blobs, the limits are %d and %d", errChainFull, head.Entries+uint64(len(entries)), head.Blobs+uint64(len(blobs)), maxChainEntries, maxChainBlobs)
		}
		for _, e := range entries {
			head.Entries++
			if err := txn.Set(chainEntryKey(id, head.Entries), e); err != nil {
				return err
			}
		}
		for _, b := range blobs {
			head.Blobs++
			if err := txn.Set(chainBlobKey(id, head.Blobs), b); err != nil {
				return err
			}
		}
		head.Writers = writers
		enc, err := msgpack.Marshal(&head)
		if err != nil {
			return err
		}
		return txn.Set(chainHeadKey(id), enc)
	})
}

// errChainID is returned by putChain for a new chain whose id is not
// the hash of its first entry.
var errChainID = errors.New("the id of a new sigchain must be the hash of its first entry")

// domainEntryHash is the domain of a sigchain entry's hash, as package
// client/keyring hashes it. A chain's id is the hash of its first entry,
// so checking it keeps a device from storing a chain under an id that a
// person showed before its first sync. The relay does not link the
// keyring, so it repeats the domain here, and a test checks the two.
const domainEntryHash = "interlude/keyring/v1 sigchain entry hash"

func chainIDOf(first []byte) []byte {
	h := sha256.New()
	h.Write([]byte(domainEntryHash))
	h.Write([]byte{0})
	h.Write(first)
	return h.Sum(nil)
}

// errChainFull is returned by putChain past maxChainEntries or maxChainBlobs.
var errChainFull = errors.New("sigchain full")

// getChain returns the entries of chain id after the first from, and its
// blobs after the first blobsFrom.
func (s *store) getChain(id []byte, from, blobsFrom uint64) (entries, blobs [][]byte, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		if entries, err = readChainList(txn, prefixChainEntry, id, from); err != nil {
			return err
		}
		blobs, err = readChainList(txn, prefixChainBlob, id, blobsFrom)
		return err
	})
	return entries, blobs, err
}

func readChainList(txn *badger.Txn, prefix byte, id []byte, after uint64) ([][]byte, error) {
	var out [][]byte
	p := key(prefix, id)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true})
	defer it.Close()
	for it.Seek(key(prefix, id, be64(after+1))); it.Valid(); it.Next() {
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (c *conn) putChain(m *wire.PutChain) wire.Message {
	if e := c.checkChainRequest(m); e != nil {
		return e
	}
	err := c.srv.store.putChain(m.ID, c.device, m.From, m.Entries, m.Blobs, m.Writers)
	var stale *errChainStale
	switch {
	case errors.As(err, &stale):
		return c.reject(m.Ref, wire.CodeStaleLog, nil, stale.Error())
	case errors.Is(err, badger.ErrConflict):
		return c.reject(m.Ref, wire.CodeStaleLog, nil, "another device appended to this sigchain at the same time: fetch the chain with GetChain and build the entry again")
	case errors.Is(err, errChainWriter):
		return c.reject(m.Ref, wire.CodeForbidden, nil, err.Error()+": an active device of the person must add this device first")
	case errors.Is(err, errChainID):
		return c.reject(m.Ref, wire.CodeForbidden, nil, err.Error()+": a person's id is the hash of the sigchain's first entry")
	case errors.Is(err, errChainFull):
		return c.reject(m.Ref, wire.CodeTooLarge, nil, err.Error())
	case err != nil:
		c.log.Error("store sigchain: Badger failed", "ref", m.Ref, "chain", fmt.Sprintf("%x", m.ID[:8]), "err", err)
		return &wire.Error{Ref: m.Ref, Code: wire.CodeInternal, Message: "the relay failed to store the sigchain; retry later"}
	}
	c.log.Info("sigchain appended", "ref", m.Ref, "chain", fmt.Sprintf("%x", m.ID[:8]), "entries", len(m.Entries), "blobs", len(m.Blobs))
	c.auditEvent(AuditChain, m.ID, m.From+uint64(len(m.Entries)), uint64(len(m.Entries)+len(m.Blobs)), "")
	return &wire.OK{Ref: m.Ref}
}

// checkChainRequest checks a PutChain's sizes before any storage is read.
func (c *conn) checkChainRequest(m *wire.PutChain) *wire.Error {
	if len(m.ID) != 32 {
		return c.reject(m.Ref, wire.CodeMalformed, nil, fmt.Sprintf("sigchain id of %d bytes, want 32", len(m.ID)))
	}
	if len(m.Entries)+len(m.Blobs) == 0 || len(m.Entries) > maxChainPut || len(m.Blobs) > maxChainPut {
		return c.reject(m.Ref, wire.CodeMalformed, nil, fmt.Sprintf("PutChain with %d entries and %d blobs: send 1 to %d of either", len(m.Entries), len(m.Blobs), maxChainPut))
	}
	if len(m.Writers) == 0 || len(m.Writers) > maxChainWriters {
		return c.reject(m.Ref, wire.CodeMalformed, nil, fmt.Sprintf("PutChain names %d writers: name 1 to %d", len(m.Writers), maxChainWriters))
	}
	for i, w := range m.Writers {
		if len(w) != len(deviceKey{}) {
			return c.reject(m.Ref, wire.CodeMalformed, nil, fmt.Sprintf("writer %d is %d bytes, want an Ed25519 key of %d", i+1, len(w), len(deviceKey{})))
		}
	}
	for i, e := range m.Entries {
		if len(e) == 0 || len(e) > maxChainEntry {
			return c.reject(m.Ref, wire.CodeTooLarge, nil, fmt.Sprintf("sigchain entry %d is %d bytes: want 1 to %d", i+1, len(e), maxChainEntry))
		}
	}
	for i, b := range m.Blobs {
		if len(b) == 0 || len(b) > maxChainBlob {
			return c.reject(m.Ref, wire.CodeTooLarge, nil, fmt.Sprintf("sigchain blob %d is %d bytes: want 1 to %d", i+1, len(b), maxChainBlob))
		}
	}
	return nil
}

func (c *conn) getChain(m *wire.GetChain) wire.Message {
	if len(m.ID) != 32 {
		return c.reject(m.Ref, wire.CodeMalformed, nil, fmt.Sprintf("sigchain id of %d bytes, want 32", len(m.ID)))
	}
	entries, blobs, err := c.srv.store.getChain(m.ID, m.From, m.BlobsFrom)
	if err != nil {
		c.log.Error("read sigchain: Badger failed", "ref", m.Ref, "chain", fmt.Sprintf("%x", m.ID[:8]), "err", err)
		return &wire.Error{Ref: m.Ref, Code: wire.CodeInternal, Message: "the relay failed to read the sigchain; retry later"}
	}
	return &wire.Chain{Ref: m.Ref, ID: m.ID, Entries: entries, Blobs: blobs}
}
