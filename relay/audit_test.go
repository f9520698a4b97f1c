package relay_test

import (
	"bytes"
	"testing"

	"interlude/relay"
	"interlude/sync/wire"
)

func TestAuditRecordsTraffic(t *testing.T) {
	r := startRelay(t)
	alice, bob := newDevice(t), newDevice(t)
	doc, a := sharedDoc(t, r, alice, bob)
	first, second := alice.sealed(t, doc, 1), alice.sealed(t, doc, 2)
	a.mustPush(doc, first)
	a.mustPush(doc, second)
	a.mustPush(doc, first) // a retry gets the first Ack again
	wantError(t, a.push(doc, alice.sealed(t, doc, 5)), wire.CodeBadSequence)
	mallory := connect(t, r, newDevice(t))
	wantError(t, mallory.push(doc, mallory.dev.sealed(t, doc, 1)), wire.CodeNotMember)

	var records []relay.AuditRecord
	if err := r.srv.ReadAudit(func(rec relay.AuditRecord) error {
		records = append(records, rec)
		return nil
	}); err != nil {
		t.Fatalf("ReadAudit: %v", err)
	}

	count := map[relay.AuditEvent]int{}
	var pushes []relay.AuditRecord
	codes := map[string]bool{}
	for i, rec := range records {
		if rec.Seq != uint64(i+1) {
			t.Errorf("record %d carries number %d", i+1, rec.Seq)
		}
		if rec.Time.IsZero() {
			t.Errorf("record %d has no time", rec.Seq)
		}
		if len(rec.Device) > 8 {
			t.Errorf("record %d holds %d bytes of a device key, want a prefix of at most 8", rec.Seq, len(rec.Device))
		}
		count[rec.Event]++
		switch rec.Event {
		case relay.AuditPush:
			pushes = append(pushes, rec)
		case relay.AuditReject:
			codes[rec.Code] = true
		}
	}
	if count[relay.AuditAuth] != 2 {
		t.Errorf("%d auth records, want 2 (alice and mallory)", count[relay.AuditAuth])
	}
	if count[relay.AuditCreate] != 1 || count[relay.AuditAddMember] != 1 {
		t.Errorf("%d create and %d add_member records, want 1 each", count[relay.AuditCreate], count[relay.AuditAddMember])
	}
	if !codes[string(wire.CodeBadSequence)] || !codes[string(wire.CodeNotMember)] {
		t.Errorf("reject records have codes %v, want bad_sequence and not_member", codes)
	}
	if len(pushes) != 3 {
		t.Fatalf("%d push records, want 3", len(pushes))
	}
	wantCursors := []uint64{1, 2, 1}
	wantSizes := []int{len(first), len(second), len(first)}
	for i, p := range pushes {
		if p.Cursor != wantCursors[i] || p.Size != uint64(wantSizes[i]) {
			t.Errorf("push record %d: cursor %d size %d, want cursor %d size %d", i, p.Cursor, p.Size, wantCursors[i], wantSizes[i])
		}
		if !bytes.Equal(p.Doc, doc[:]) {
			t.Errorf("push record %d names document %x, want %s", i, p.Doc, doc)
		}
		if !bytes.Equal(p.Device, alice.pub[:8]) {
			t.Errorf("push record %d names device %x, want alice's prefix %x", i, p.Device, alice.pub[:8])
		}
	}
	if err := r.srv.VerifyAudit(); err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
}
