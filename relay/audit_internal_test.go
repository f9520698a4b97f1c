package relay

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/vmihailenco/msgpack/v5"
)

// openAuditServer opens a relay without serving it and appends n audit
// records directly.
func openAuditServer(t *testing.T, n int) *Server {
	t.Helper()
	s, err := Open(Config{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	for i := range n {
		s.audit.append(AuditRecord{Event: AuditPush, Conn: 1, Doc: make([]byte, 16), Cursor: uint64(i + 1), Size: 100})
	}
	if err := s.VerifyAudit(); err != nil {
		t.Fatalf("VerifyAudit of an untouched log: %v", err)
	}
	return s
}

// rewriteRecord decodes audit record seq, lets change edit it, and stores
// it again without fixing any hash, as an edit on disk would.
func rewriteRecord(t *testing.T, s *Server, seq uint64, change func(r *AuditRecord)) {
	t.Helper()
	err := s.store.db.Update(func(txn *badger.Txn) error {
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
		change(&r)
		value, err = msgpack.Marshal(&r)
		if err != nil {
			return err
		}
		return txn.Set(auditKey(seq), value)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func deleteRecord(t *testing.T, s *Server, seq uint64) {
	t.Helper()
	if err := s.store.db.Update(func(txn *badger.Txn) error { return txn.Delete(auditKey(seq)) }); err != nil {
		t.Fatal(err)
	}
}

// TestRewriteUnchangedKeepsChain shows that rewriteRecord alone changes
// no bytes, so the tampering cases fail for their change only.
func TestRewriteUnchangedKeepsChain(t *testing.T) {
	s := openAuditServer(t, 3)
	rewriteRecord(t, s, 2, func(*AuditRecord) {})
	if err := s.VerifyAudit(); err != nil {
		t.Fatalf("VerifyAudit after rewriting a record unchanged: %v", err)
	}
}

func TestVerifyAuditDetectsTampering(t *testing.T) {
	cases := map[string]func(t *testing.T, s *Server){
		"changed size in the middle": func(t *testing.T, s *Server) {
			rewriteRecord(t, s, 2, func(r *AuditRecord) { r.Size++ })
		},
		"changed event in the middle": func(t *testing.T, s *Server) {
			rewriteRecord(t, s, 3, func(r *AuditRecord) { r.Event = AuditAuth })
		},
		"changed last record": func(t *testing.T, s *Server) {
			rewriteRecord(t, s, 5, func(r *AuditRecord) { r.Cursor = 99 })
		},
		"changed number": func(t *testing.T, s *Server) {
			rewriteRecord(t, s, 4, func(r *AuditRecord) { r.Seq = 40 })
		},
		"removed middle record": func(t *testing.T, s *Server) {
			deleteRecord(t, s, 3)
		},
		"cut tail": func(t *testing.T, s *Server) {
			deleteRecord(t, s, 5)
		},
		"removed first record": func(t *testing.T, s *Server) {
			deleteRecord(t, s, 1)
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			s := openAuditServer(t, 5)

			tamper(t, s)

			if err := s.VerifyAudit(); !errors.Is(err, ErrAuditBroken) {
				t.Fatalf("VerifyAudit after tampering: err = %v, want ErrAuditBroken", err)
			}
		})
	}
}

func TestAuditChainContinuesAfterReopen(t *testing.T) {
	dir := t.TempDir()
	for round := range 3 {
		s, err := Open(Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			s.audit.append(AuditRecord{Event: AuditAuth, Conn: uint64(round)})
		}
		var seqs []uint64
		err = s.ReadAudit(func(r AuditRecord) error {
			seqs = append(seqs, r.Seq)
			return nil
		})
		if err != nil {
			t.Fatalf("round %d: ReadAudit: %v", round, err)
		}
		if want := 4 * (round + 1); len(seqs) != want {
			t.Fatalf("round %d: %d records, want %d", round, len(seqs), want)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuditWritesManyRecordsInBatches(t *testing.T) {
	s := openAuditServer(t, 2*auditBatch+3)
	n := 0
	err := s.ReadAudit(func(r AuditRecord) error {
		n++
		if r.Seq != uint64(n) {
			t.Fatalf("record %d carries number %d", n, r.Seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2*auditBatch+3 {
		t.Fatalf("%d records, want %d", n, 2*auditBatch+3)
	}
}
