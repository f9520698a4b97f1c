package relay

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"interlude/sync/envelope"
	"interlude/sync/membership"
)

// TestPushCheckRunsUnderDocumentLock checks that appendEnvelope runs the
// writer check while it holds the document's lock, the lock that
// membership appends take too. A demotion therefore lands either before
// the check or after the envelope is stored, never in between. A check
// that rejects leaves nothing stored.
func TestPushCheckRunsUnderDocumentLock(t *testing.T) {
	s, err := Open(Config{DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })

	doc := envelope.DocID{7}
	lockHeld := false
	rejected := errors.New("test rejects")
	_, stored, err := s.store.appendEnvelope(doc, deviceKey{1}, 1, envelope.Hash{}, envelope.Hash{2}, []byte("envelope"), func(*membership.State) error {
		s.store.locks.mu.Lock()
		d := s.store.locks.active[doc]
		lockHeld = d != nil && d.users > 0
		s.store.locks.mu.Unlock()
		return rejected
	})
	if !lockHeld {
		t.Error("the check ran without the document's lock")
	}
	if !errors.Is(err, rejected) || stored {
		t.Errorf("appendEnvelope after a rejecting check: stored %v, err %v; want nothing stored and the check's error", stored, err)
	}
	_, stored, err = s.store.appendEnvelope(doc, deviceKey{1}, 1, envelope.Hash{}, envelope.Hash{2}, []byte("envelope"), func(*membership.State) error { return nil })
	if err != nil || !stored {
		t.Fatalf("the same envelope after an accepting check: stored %v, err %v; want it stored as seq 1, proving the rejection wrote nothing", stored, err)
	}
}
