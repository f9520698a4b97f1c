package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"interlude/client"
	"interlude/client/wstransport"
	"interlude/sync/envelope"
	"interlude/sync/membership"
)

// TestLinkedDevicesUnlinkable links a laptop and a phone both ways. The
// laptop holds two journals and the phone one, created before the link.
// After the offers and replies, each device holds all three, under a key
// of its own in each, and nothing the relay stores holds either device
// key, so the relay's records do not show that one person's devices
// share the three journals.
func TestLinkedDevicesUnlinkable(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	var docs []envelope.DocID
	for _, c := range []*client.Client{laptop, laptop, phone} {
		doc, err := c.CreateDocument(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.SetText(ctx, doc, "written before the link"); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc)
	}
	syncAll(t, ctx, laptop, phone)
	if n, err := laptop.LinkDevice(ctx, phone.Identity().Public()); err != nil || n != 2 {
		t.Fatalf("the laptop's LinkDevice = %d, %v; want 2 journals offered", n, err)
	}
	if n, err := phone.LinkDevice(ctx, laptop.Identity().Public()); err != nil || n != 1 {
		t.Fatalf("the phone's LinkDevice = %d, %v; want 1 journal offered", n, err)
	}
	syncAll(t, ctx, laptop, phone, laptop, phone, laptop)

	for _, doc := range docs {
		for _, c := range []*client.Client{laptop, phone} {
			mustText(t, c, doc, "written before the link")
			if err := c.SetText(ctx, doc, "written before the link, and by "+c.Identity().String()); err != nil {
				t.Fatal(err)
			}
			syncAll(t, ctx, c)
			id, err := c.MemberID(doc)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(id.Sign, c.Identity().Public().Sign) {
				t.Errorf("%s is a member of document %s under its device key", c.Identity(), doc)
			}
		}
	}
	for _, c := range []*client.Client{laptop, phone} {
		if st := c.Status(docs[0]); st.Pending != 0 {
			t.Errorf("%s has %d changes pending after the handoffs", c.Identity(), st.Pending)
		}
	}

	// The control: the scan finds the phone's key in a laptop journal.
	checkNoDeviceKeys(t, h, phone, docs[0], laptop, phone)
}

// TestLinkReachesRunningDevices links a phone while both devices' sync
// loops run, with the timed relist turned off: the offer, the reply and
// the addition must each wake the other side through the relay's notice.
func TestLinkReachesRunningDevices(t *testing.T) {
	defer client.SetRelistIntervalForTest(time.Hour)()
	h := newHarness(t)
	ctx := h.ctx
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := laptop.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := laptop.SetText(ctx, doc, "sleep diary"); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	for _, c := range []*client.Client{laptop, phone} {
		go c.Run(runCtx)
	}
	waitFor(t, "the laptop registers its journal", func() bool { return laptop.Status(doc).Pending == 0 })
	if _, err := laptop.LinkDevice(ctx, phone.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the running phone reads the journal", func() bool {
		got, err := phone.Text(doc)
		return err == nil && got == "sleep diary"
	})
}

// TestLinkedDeviceKeepsItsKey links, from a laptop, a phone that is a
// member of the laptop's journal in its own right: the phone replies the
// offer with the key it holds the journal under, and the laptop adds
// nothing.
func TestLinkedDeviceKeepsItsKey(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := laptop.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	link, err := laptop.Invite(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop)
	if _, err := phone.AcceptInvite(ctx, link); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop, phone)
	before, err := laptop.Members(doc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.LinkDevice(ctx, phone.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	// The phone links the laptop too, so it replies with its real key.
	if _, err := phone.LinkDevice(ctx, laptop.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop, phone, laptop, phone)
	after, err := laptop.Members(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || len(after) != 2 {
		t.Errorf("the journal has %d members after the link, %d before; want 2 both times", len(after), len(before))
	}
	if st := laptop.Status(doc); st.Pending != 0 {
		t.Errorf("the laptop has %d changes pending, want none", st.Pending)
	}
	// The laptop learned the phone's key, so unlinking finds it. The
	// phone joined by invitation, as another person: unlinking does not
	// remove it, and names the journal so someone removes it there.
	n, err := laptop.UnlinkDevice(ctx, phone.Identity().Public().Sign)
	var unsure *client.UnlinkUnsureError
	if n != 0 || !errors.As(err, &unsure) || len(unsure.Docs) != 1 || unsure.Docs[0] != doc {
		t.Errorf("UnlinkDevice = %d, %v; want 0 documents and the journal named", n, err)
	}
}

// TestUnlinkFollowedByOtherDevices links a laptop, a phone and a tablet
// each to each. The tablet unlinks the lost phone: the laptop sees the
// removal in the journal's log, forgets the phone, and does not offer
// it a journal created afterwards.
func TestUnlinkFollowedByOtherDevices(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	tablet := newClient(t, h.relay.url(), h.clientLogs)
	devices := []*client.Client{laptop, phone, tablet}
	doc, err := laptop.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	linkEachToEach(t, ctx, devices...)
	for _, c := range devices {
		if _, err := c.Text(doc); err != nil {
			t.Fatalf("%s lacks the journal after linking: %v", c.Identity(), err)
		}
	}

	// A journal the laptop offers just before the unlink: the phone
	// replies, and the laptop's addition of the phone's key is queued
	// when the tablet's unlink reaches it.
	queued, err := laptop.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := laptop.SetText(ctx, queued, "offered just before the loss"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop, phone)

	n, err := tablet.UnlinkDevice(ctx, phone.Identity().Public().Sign)
	if err != nil || n != 1 {
		t.Fatalf("the tablet's UnlinkDevice = %d, %v; want the journal changed, no error", n, err)
	}
	syncAll(t, ctx, tablet, laptop)
	linked, err := laptop.LinkedDevices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range linked {
		if l.String() == phone.Identity().PublicID() {
			t.Error("the laptop still links the phone after the tablet unlinked it")
		}
	}

	later, err := laptop.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := laptop.SetText(ctx, later, "written after the phone was lost"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		syncAll(t, ctx, laptop, tablet, phone)
	}
	mustText(t, tablet, later, "written after the phone was lost")
	if _, err := phone.Text(later); err == nil {
		t.Error("the unlinked phone holds a journal created after its unlink")
	}
	if _, err := phone.Text(queued); err == nil {
		t.Error("the unlinked phone holds the journal whose addition was queued at the unlink")
	}
}

// openBenchClient opens a client with a new identity and a Badger store,
// syncing through relayURL.
func openBenchClient(b *testing.B, relayURL string) *client.Client {
	b.Helper()
	id, err := client.NewIdentity()
	if err != nil {
		b.Fatal(err)
	}
	c, err := client.Open(context.Background(), client.Config{Store: openStore(b, b.TempDir()), Identity: id, Dialer: wstransport.Dialer{}, RelayURL: relayURL})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkLinkDevice measures linking a new device to a laptop that
// holds 20 journals, over a relay on loopback: from LinkDevice until the
// new device holds every journal, through the offers, the replies, the
// additions and the fetches. Both devices sync in turn, as two running
// sessions would, and syncs/op counts the SyncOnce calls.
func BenchmarkLinkDevice(b *testing.B) {
	const journals = 20
	ctx := context.Background()
	logs := &lockedBuffer{}
	r := startRelay(b, logs)
	open := func() *client.Client { return openBenchClient(b, r.url()) }
	laptop := open()
	for i := range journals {
		doc, err := laptop.CreateDocument(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := laptop.SetText(ctx, doc, fmt.Sprintf("journal %d", i)); err != nil {
			b.Fatal(err)
		}
	}
	if err := laptop.SyncOnce(ctx); err != nil {
		b.Fatal(err)
	}
	syncs, links := 0, 0
	for b.Loop() {
		b.StopTimer()
		phone := open()
		b.StartTimer()
		if _, err := laptop.LinkDevice(ctx, phone.Identity().Public()); err != nil {
			b.Fatal(err)
		}
		links++
		for rounds := 0; len(phone.Documents()) < journals; rounds++ {
			if rounds == 50 {
				b.Fatalf("the phone holds %d of %d journals after %d rounds of syncs", len(phone.Documents()), journals, rounds)
			}
			for _, c := range []*client.Client{laptop, phone} {
				if err := c.SyncOnce(ctx); err != nil {
					b.Fatal(err)
				}
				syncs++
			}
		}
	}
	b.ReportMetric(float64(syncs)/float64(links), "syncs/op")
}

// invitedPatient returns a therapist's journal with a colleague added as
// admin, and a patient who joined it by invitation as a writer, all
// synced.
func invitedPatient(t *testing.T, h *harness) (therapist, colleague, patient *client.Client, doc envelope.DocID) {
	t.Helper()
	ctx := h.ctx
	therapist = newClient(t, h.relay.url(), h.clientLogs)
	colleague = newClient(t, h.relay.url(), h.clientLogs)
	patient = newClient(t, h.relay.url(), h.clientLogs)
	doc, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addMember(t, ctx, therapist, doc, colleague, membership.RoleAdmin)
	link, err := therapist.Invite(ctx, doc)
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist, colleague)
	if _, err := patient.AcceptInvite(ctx, link); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist, patient, colleague)
	return therapist, colleague, patient, doc
}

// TestShareByAnotherAdminAddsNothing has a patient join a journal by
// invitation, then a second admin share the journal with the patient's
// public id. The admin's offer proves its membership, so the patient
// replies with the key it is a member under, and no member is added; a
// stranger's offer would get a key that opens nothing instead.
func TestShareByAnotherAdminAddsNothing(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	_, colleague, patient, doc := invitedPatient(t, h)
	before, err := colleague.Members(doc)
	if err != nil {
		t.Fatal(err)
	}
	share(t, ctx, colleague, doc, patient)
	syncAll(t, ctx, colleague)
	after, err := colleague.Members(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("the journal has %d members after the colleague's share, %d before; want no key added", len(after), len(before))
	}
	if offers, err := colleague.Offers(ctx, doc); err != nil || len(offers) != 0 {
		t.Errorf("offers after the patient's reply = %v, %v; want none", offers, err)
	}
	// Sharing again is now refused at once: the colleague knows the key.
	if err := colleague.Share(ctx, doc, patient.Identity().Public()); !errors.Is(err, client.ErrAlreadyMember) {
		t.Errorf("sharing again = %v, want ErrAlreadyMember", err)
	}
}

// TestOfferWithRoleChangesMemberRole has a second admin offer a journal
// as admin to a patient who joined it by invitation as a writer: the
// patient's reply names its key, and the admin changes its role instead
// of adding anything.
func TestOfferWithRoleChangesMemberRole(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist, colleague, patient, doc := invitedPatient(t, h)
	before, err := colleague.Members(doc)
	if err != nil {
		t.Fatal(err)
	}
	addMember(t, ctx, colleague, doc, patient, membership.RoleAdmin)
	syncAll(t, ctx, colleague, therapist)
	after, err := therapist.Members(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("the journal has %d members after the offer, %d before; want none added", len(after), len(before))
	}
	m, ok := findMemberKey(t, therapist, doc, memberKey(t, patient, doc))
	if !ok || m.Role != membership.RoleAdmin {
		t.Errorf("the patient's role after the admin offer = %s (member %v), want admin", m.Role, ok)
	}
}

// TestRelinkKeepsRemovalAndLink unlinks a phone from a laptop, then links
// it again, from the laptop alone and from both devices: the phone stays
// out of the journal it was removed from, the laptop stops offering it,
// the old removal does not undo the new link, and a journal created after
// the new link reaches the phone.
func TestRelinkKeepsRemovalAndLink(t *testing.T) {
	for _, bothWays := range []bool{false, true} {
		t.Run(fmt.Sprintf("both ways %v", bothWays), func(t *testing.T) {
			relink(t, bothWays)
		})
	}
}

func relink(t *testing.T, bothWays bool) {
	h := newHarness(t)
	ctx := h.ctx
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	old, err := laptop.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.LinkDevice(ctx, phone.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	if bothWays {
		if _, err := phone.LinkDevice(ctx, laptop.Identity().Public()); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, ctx, laptop, phone, laptop, phone)
	if _, err := phone.Text(old); err != nil {
		t.Fatalf("the phone lacks the journal after the first link: %v", err)
	}
	if _, err := laptop.UnlinkDevice(ctx, phone.Identity().Public().Sign); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop, phone)
	if !phone.Status(old).Removed {
		t.Fatal("the phone is not removed from the journal; the checks below would prove nothing")
	}

	if _, err := laptop.LinkDevice(ctx, phone.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	fresh, err := laptop.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := laptop.SetText(ctx, old, "written after the phone was removed"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		syncAll(t, ctx, laptop, phone)
	}
	if got, _ := phone.Text(old); got == "written after the phone was removed" {
		t.Error("the linked again phone reads the journal it was removed from")
	}
	if !phone.Status(old).Removed {
		t.Error("the linked again phone is back in the journal it was removed from")
	}
	if offers, err := laptop.Offers(ctx, old); err != nil || len(offers) != 0 {
		t.Errorf("offers of the journal the phone was removed from = %v, %v; want none", offers, err)
	}
	linked, err := laptop.LinkedDevices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(linked) != 1 {
		t.Errorf("the laptop links %d devices after linking the phone again, want the phone", len(linked))
	}
	if _, err := phone.Text(fresh); err != nil {
		t.Errorf("the journal created after the new link did not reach the phone: %v", err)
	}
}

// TestLostDeviceReplyAfterRemoval has a laptop offer six journals to a
// phone that is lost before it replies. A tablet removes the phone while
// the laptop is offline, and whoever has the phone lets it reply. When
// the laptop syncs, it must see the removal before it adds the phone's
// keys anywhere: the phone receives none of the six.
func TestLostDeviceReplyAfterRemoval(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	tablet := newClient(t, h.relay.url(), h.clientLogs)
	devices := []*client.Client{laptop, phone, tablet}
	first, err := laptop.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	linkEachToEach(t, ctx, devices...)
	var later []envelope.DocID
	for i := range 6 {
		doc, err := laptop.CreateDocument(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := laptop.SetText(ctx, doc, fmt.Sprintf("journal %d, before the loss", i)); err != nil {
			t.Fatal(err)
		}
		later = append(later, doc)
	}
	syncAll(t, ctx, laptop) // the offers go out

	if n, err := tablet.UnlinkDevice(ctx, phone.Identity().Public().Sign); err != nil || n != 1 {
		t.Fatalf("the tablet's UnlinkDevice = %d, %v; want the first journal changed", n, err)
	}
	syncAll(t, ctx, tablet, phone, laptop, phone)
	for i, doc := range later {
		if _, err := phone.Text(doc); err == nil {
			t.Errorf("the lost phone holds journal %d, offered before its removal", i)
		}
	}
	if _, err := phone.Text(first); err != nil {
		t.Fatalf("the phone lost its copy of the first journal: %v", err)
	}
}

// TestWriterRemovesOwnDevice has a therapist share a journal with a
// client's phone, which brings in the client's linked laptop. The laptop
// is only a writer, yet it may remove the phone's key, a device of its
// own person, as it would a lost device it cannot match.
func TestWriterRemovesOwnDevice(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	share(t, ctx, therapist, doc, phone)
	if _, err := phone.LinkDevice(ctx, laptop.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, phone, laptop, phone, laptop)
	phoneKey := memberKey(t, phone, doc)
	if err := laptop.RemoveMember(ctx, doc, phoneKey); err != nil {
		t.Fatalf("the writer laptop removes the phone's key: %v", err)
	}
	syncAll(t, ctx, laptop, therapist)
	if _, ok := findMemberKey(t, therapist, doc, phoneKey); ok {
		t.Error("the phone's key is still a member after the laptop removed it")
	}
	// Another person's key stays out of a writer's reach.
	if err := laptop.RemoveMember(ctx, doc, memberKey(t, therapist, doc)); !errors.Is(err, client.ErrNotAdmin) {
		t.Errorf("the writer removing the therapist = %v, want ErrNotAdmin", err)
	}
}

// linkEachToEach links every one of devices to every other and syncs
// them until the offers, replies and additions are through.
func linkEachToEach(t *testing.T, ctx context.Context, devices ...*client.Client) {
	t.Helper()
	for _, a := range devices {
		for _, b := range devices {
			if a == b {
				continue
			}
			if _, err := a.LinkDevice(ctx, b.Identity().Public()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 3 {
		syncAll(t, ctx, devices...)
	}
}

// TestRemovalNotUndoneByStaleReply has two admins share a journal with a
// patient at the same time. One adds the patient's key and then removes
// it; the other takes the patient's reply only afterwards, from a copy of
// the log that does not show the removal yet. Its addition must be
// dropped, and the patient must not read what is written after the
// removal.
func TestRemovalNotUndoneByStaleReply(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	colleague := newClient(t, h.relay.url(), h.clientLogs)
	patient := newClient(t, h.relay.url(), h.clientLogs)
	doc, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addMember(t, ctx, therapist, doc, colleague, membership.RoleAdmin)
	syncAll(t, ctx, colleague)
	for _, admin := range []*client.Client{therapist, colleague} {
		if err := admin.Share(ctx, doc, patient.Identity().Public()); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, ctx, therapist, colleague, patient, therapist, patient)
	key := memberKey(t, patient, doc)
	if err := therapist.RemoveMember(ctx, doc, key); err != nil {
		t.Fatal(err)
	}
	if err := therapist.SetText(ctx, doc, "written after the removal"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist, colleague, therapist, patient)
	if _, ok := findMemberKey(t, therapist, doc, key); ok {
		t.Error("the removed patient's key is a member again")
	}
	if got, _ := patient.Text(doc); got == "written after the removal" {
		t.Error("the removed patient reads what was written after the removal")
	}
}
