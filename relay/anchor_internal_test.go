package relay

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/vmihailenco/msgpack/v5"
)

// rechain rewrites the audit log from record from on as an operator with
// the whole database could: it changes record from, then recomputes every
// later Prev and the head, so the chain alone no longer shows the edit.
func rechain(t *testing.T, s *Server, from uint64, change func(r *AuditRecord)) {
	t.Helper()
	err := s.store.db.Update(func(txn *badger.Txn) error {
		head, _, err := readAuditHead(txn)
		if err != nil {
			return err
		}
		var prev [sha256.Size]byte
		if from > 1 {
			item, err := txn.Get(auditKey(from - 1))
			if err != nil {
				return err
			}
			value, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			prev = auditHash(value)
		}
		for seq := from; seq <= head; seq++ {
			item, err := txn.Get(auditKey(seq))
			if err != nil {
				return err
			}
			value, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			var r AuditRecord
			if err := msgpack.Unmarshal(value, &r); err != nil {
				return err
			}
			if seq == from {
				change(&r)
			}
			r.Prev = prev[:]
			if value, err = msgpack.Marshal(&r); err != nil {
				return err
			}
			if err := txn.Set(auditKey(seq), value); err != nil {
				return err
			}
			prev = auditHash(value)
		}
		return txn.Set(auditHeadKey, append(binary.BigEndian.AppendUint64(nil, head), prev[:]...))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAuditAnchorDetectsRewrite takes an anchor, rewrites the chain
// consistently from an earlier record, and checks that VerifyAudit passes
// while the anchor fails. Without the anchor the rewrite goes unseen.
func TestAuditAnchorDetectsRewrite(t *testing.T) {
	s := openAuditServer(t, 6)
	anchor, err := s.AuditHead()
	if err != nil {
		t.Fatal(err)
	}
	if anchor.Seq != 6 {
		t.Fatalf("audit head is record %d, want 6", anchor.Seq)
	}
	parsed, err := ParseAuditAnchor(anchor.String())
	if err != nil || parsed != anchor {
		t.Fatalf("ParseAuditAnchor(%q) = %v, %v; want the anchor back", anchor, parsed, err)
	}
	if err := s.VerifyAuditAnchors(anchor); err != nil {
		t.Fatalf("VerifyAuditAnchors of an untouched log: %v", err)
	}

	rechain(t, s, 3, func(r *AuditRecord) { r.Size = 1 })
	if err := s.VerifyAudit(); err != nil {
		t.Fatalf("VerifyAudit after a consistent rewrite: %v; the test no longer shows what anchors add", err)
	}
	if err := s.VerifyAuditAnchors(anchor); !errors.Is(err, ErrAuditBroken) {
		t.Errorf("VerifyAuditAnchors after a rewrite: %v, want ErrAuditBroken", err)
	}
}

// TestAuditAnchorBeyondEnd checks that an anchor past the log's end, as
// after its tail was cut and the head moved back, fails.
func TestAuditAnchorBeyondEnd(t *testing.T) {
	s := openAuditServer(t, 3)
	if err := s.VerifyAuditAnchors(AuditAnchor{Seq: 9}); !errors.Is(err, ErrAuditBroken) {
		t.Errorf("VerifyAuditAnchors with an anchor at record 9 of 3: %v, want ErrAuditBroken", err)
	}
}

func TestParseAuditAnchorRejects(t *testing.T) {
	for _, s := range []string{"", "5", "0:" + string(make([]byte, 64)), "x:00", "3:abcd"} {
		if _, err := ParseAuditAnchor(s); err == nil {
			t.Errorf("ParseAuditAnchor(%q) succeeded", s)
		}
	}
}
