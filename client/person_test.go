package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"

	"interlude/client"
	"interlude/client/keyring"
	"interlude/sync/envelope"
	"interlude/sync/membership"
	"interlude/sync/wire"
)

// startPerson starts a person on first, links the other devices both
// ways, and syncs until every device holds the person's key.
func startPerson(t *testing.T, ctx context.Context, first *client.Client, others ...*client.Client) client.PersonID {
	t.Helper()
	p, err := first.Person(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all := append([]*client.Client{first}, others...)
	linkEachToEach(t, ctx, all...)
	syncAll(t, ctx, all...)
	for _, c := range all {
		got, ok, err := c.PersonOf(ctx)
		if err != nil || !ok || got != p {
			t.Fatalf("%s belongs to person %v (%v, %v), want %v", c.Identity(), got, ok, err, p)
		}
	}
	return p
}

// personDevices returns the devices c's copy of its person's sigchain
// lists, and the user key's generation.
func personDevices(t *testing.T, ctx context.Context, c *client.Client) (active, revoked map[string]bool, generation uint32) {
	t.Helper()
	devs, gen, err := c.PersonDevices(ctx)
	if err != nil {
		t.Fatalf("PersonDevices of %s: %v", c.Identity(), err)
	}
	active, revoked = map[string]bool{}, map[string]bool{}
	for _, d := range devs {
		if d.Revoked {
			revoked[d.Fingerprint()] = true
		} else {
			active[d.Fingerprint()] = true
		}
	}
	return active, revoked, gen
}

// createJournal creates a document on c with text and syncs it.
func createJournal(t *testing.T, ctx context.Context, c *client.Client, text string) envelope.DocID {
	t.Helper()
	doc, err := c.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetText(ctx, doc, text); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, c)
	return doc
}

// TestPersonShareReachesEveryDevice has a therapist share a journal with
// a client's person id, not a device's. The laptop started the person and
// linked the phone, so both hold the user key, and both end up reading
// the journal, each under a key of its own.
func TestPersonShareReachesEveryDevice(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	p := startPerson(t, ctx, laptop, phone)

	for _, c := range []*client.Client{laptop, phone} {
		active, _, gen := personDevices(t, ctx, c)
		if !active[laptop.Identity().Public().Fingerprint()] || !active[phone.Identity().Public().Fingerprint()] || len(active) != 2 {
			t.Errorf("%s lists active devices %v, want the laptop and the phone", c.Identity(), active)
		}
		if gen != 1 {
			t.Errorf("%s has user key generation %d, want 1", c.Identity(), gen)
		}
	}

	doc := createJournal(t, ctx, therapist, "homework: three good things")
	parsed, err := client.ParsePersonID(p.String())
	if err != nil || parsed != p {
		t.Fatalf("ParsePersonID(%q) = %v, %v", p, parsed, err)
	}
	if err := therapist.ShareWithPerson(ctx, doc, parsed, membership.RoleWriter); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		syncAll(t, ctx, therapist, laptop, phone)
	}
	for _, c := range []*client.Client{laptop, phone} {
		mustText(t, c, doc, "homework: three good things")
		if bytes.Equal(memberKey(t, c, doc), c.Identity().Public().Sign) {
			t.Errorf("%s is a member under its device key", c.Identity())
		}
	}
	m, ok := findMemberKey(t, therapist, doc, memberKey(t, laptop, doc))
	if !ok || m.Role != membership.RoleWriter {
		t.Errorf("the laptop's key in the therapist's log: %+v, %v; want a writer", m, ok)
	}
	if offers, err := therapist.Offers(ctx, doc); err != nil || len(offers) != 0 {
		t.Errorf("the therapist has %d offers waiting (%v), want none after the reply", len(offers), err)
	}

	if err := therapist.ShareWithPerson(ctx, doc, client.PersonID{1}, membership.RoleReader); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist)
	if err := laptop.ShareWithPerson(ctx, doc, p, membership.RoleReader); err == nil {
		t.Error("a device shared with its own person")
	}
}

// TestRevokeRotatesUserKey unlinks a lost phone on the laptop. The
// sigchain revokes it and rotates the user key, and the tablet opens the
// new key. A journal shared with the person afterwards reaches the laptop
// and the tablet but not the phone, which still holds the old key and
// reads the person's old inbox.
func TestRevokeRotatesUserKey(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	tablet := newClient(t, h.relay.url(), h.clientLogs)
	p := startPerson(t, ctx, laptop, phone, tablet)

	if _, err := laptop.UnlinkDevice(ctx, phone.Identity().Public().Sign); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop, tablet, phone)
	for _, c := range []*client.Client{laptop, tablet, phone} {
		active, revoked, gen := personDevices(t, ctx, c)
		if gen != 2 {
			t.Errorf("%s has user key generation %d, want 2 after the revocation", c.Identity(), gen)
		}
		if active[phone.Identity().Public().Fingerprint()] || !revoked[phone.Identity().Public().Fingerprint()] {
			t.Errorf("%s lists the phone as active %v, revoked %v", c.Identity(), active, revoked)
		}
		if len(active) != 2 {
			t.Errorf("%s lists %d active devices, want 2", c.Identity(), len(active))
		}
	}

	doc := createJournal(t, ctx, therapist, "written after the phone was lost")
	if err := therapist.ShareWithPerson(ctx, doc, p, membership.RoleWriter); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		syncAll(t, ctx, therapist, phone, laptop, tablet)
	}
	mustText(t, laptop, doc, "written after the phone was lost")
	mustText(t, tablet, doc, "written after the phone was lost")
	if got, err := phone.Text(doc); err == nil {
		t.Errorf("the revoked phone reads %q", got)
	}
}

// TestShareWaitingWhenKeyRotates shares a journal with a person, and the
// phone, soon to be lost, replies to the offer first. Before the
// therapist reads that reply, the laptop revokes the phone, which rotates
// the user key. The therapist withdraws the offer to the old user key and
// offers the journal to the new one, so the reply of the revoked phone
// counts for nothing and the laptop's does. In the second case the
// therapist also shares again before its next sync, as one does when
// nothing seems to happen.
func TestShareWaitingWhenKeyRotates(t *testing.T) {
	for _, shareAgain := range []bool{false, true} {
		t.Run(fmt.Sprintf("share again %v", shareAgain), func(t *testing.T) {
			h := newHarness(t)
			ctx := h.ctx
			therapist := newClient(t, h.relay.url(), h.clientLogs)
			laptop := newClient(t, h.relay.url(), h.clientLogs)
			phone := newClient(t, h.relay.url(), h.clientLogs)
			p := startPerson(t, ctx, laptop, phone)

			doc := createJournal(t, ctx, therapist, "mood log")
			if err := therapist.ShareWithPerson(ctx, doc, p, membership.RoleWriter); err != nil {
				t.Fatal(err)
			}
			// The phone reads the offer to the first user key and replies.
			syncAll(t, ctx, therapist, phone)
			if offers, err := therapist.Offers(ctx, doc); err != nil || len(offers) != 1 {
				t.Fatalf("the therapist has %d offers waiting (%v), want 1", len(offers), err)
			}
			if _, err := laptop.UnlinkDevice(ctx, phone.Identity().Public().Sign); err != nil {
				t.Fatal(err)
			}
			syncAll(t, ctx, laptop)
			if _, _, gen := personDevices(t, ctx, laptop); gen != 2 {
				t.Fatalf("generation %d after the revocation, want 2", gen)
			}
			if shareAgain {
				if err := therapist.ShareWithPerson(ctx, doc, p, membership.RoleWriter); err != nil {
					t.Fatal(err)
				}
			}
			for range 3 {
				syncAll(t, ctx, therapist, laptop, phone)
			}

			mustText(t, laptop, doc, "mood log")
			members, err := therapist.Members(doc)
			if err != nil {
				t.Fatal(err)
			}
			if len(members) != 2 {
				t.Errorf("the journal has %d members, want the therapist and the laptop: %+v", len(members), members)
			}
			if got, err := phone.Text(doc); err == nil {
				t.Errorf("the revoked phone reads %q", got)
			}
		})
	}
}

// TestRecoveryJoinsPerson starts a person on a laptop with a recovery
// phrase among its devices. After the laptop is lost, a new device
// recovers with the phrase alone: the recovery client opens the user key
// as the phrase's device and adds the new device to the sigchain. The
// new device then revokes the laptop, which rotates the user key, and a
// journal shared with the person afterwards reaches the new device but
// not the laptop, which still runs in the wrong hands. In the second
// case the new device showed a person id before the recovery, as the
// app's person button does, and so started a person of its own, which it
// must leave for the recovered one.
func TestRecoveryJoinsPerson(t *testing.T) {
	for _, startedBefore := range []bool{false, true} {
		t.Run(fmt.Sprintf("started before %v", startedBefore), func(t *testing.T) {
			h := newHarness(t)
			ctx := h.ctx
			therapist := newClient(t, h.relay.url(), h.clientLogs)
			laptop := newClient(t, h.relay.url(), h.clientLogs)
			fresh := newClient(t, h.relay.url(), h.clientLogs)
			p, err := laptop.Person(ctx)
			if err != nil {
				t.Fatal(err)
			}
			phrase, err := keyring.NewRecoveryPhrase()
			if err != nil {
				t.Fatal(err)
			}
			recoveryID, err := client.RecoveryIdentity(phrase)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := laptop.LinkRecoveryDevice(ctx, recoveryID); err != nil {
				t.Fatal(err)
			}
			createJournal(t, ctx, laptop, "sleep diary")
			syncAll(t, ctx, laptop)
			if _, revoked, _ := personDevices(t, ctx, laptop); len(revoked) != 0 {
				t.Fatalf("revoked devices before the loss: %v", revoked)
			}
			if startedBefore {
				if _, err := fresh.Person(ctx); err != nil {
					t.Fatal(err)
				}
			}

			recovery := openRecoveryClient(t, h, recoveryID)
			if _, err := recovery.HandOver(ctx, fresh); err != nil {
				t.Fatal(err)
			}
			syncAll(t, ctx, fresh)
			if got, ok, err := fresh.PersonOf(ctx); err != nil || !ok || got != p {
				t.Fatalf("the new device belongs to %v (%v, %v), want the laptop's person", got, ok, err)
			}
			active, _, gen := personDevices(t, ctx, fresh)
			if !active[fresh.Identity().Public().Fingerprint()] || gen != 1 {
				t.Fatalf("the new device's sigchain lists active devices %v at generation %d", active, gen)
			}

			if _, err := fresh.UnlinkDevice(ctx, laptop.Identity().Public().Sign); err != nil {
				t.Fatal(err)
			}
			syncAll(t, ctx, fresh, laptop)
			if _, revoked, gen := personDevices(t, ctx, fresh); !revoked[laptop.Identity().Public().Fingerprint()] || gen != 2 {
				t.Errorf("after the new device revoked the laptop: revoked %v, generation %d; want the laptop at generation 2", revoked, gen)
			}
			doc := createJournal(t, ctx, therapist, "after the recovery")
			if err := therapist.ShareWithPerson(ctx, doc, p, membership.RoleWriter); err != nil {
				t.Fatal(err)
			}
			for range 4 {
				syncAll(t, ctx, therapist, laptop, fresh)
			}
			mustText(t, fresh, doc, "after the recovery")
			if got, err := laptop.Text(doc); err == nil {
				t.Errorf("the lost laptop reads %q", got)
			}
		})
	}
}

// TestRelayCannotSwapSigchain puts a relay between the therapist and the
// real relay that replies to a request for the client's sigchain with
// another person's, which the relay stores too and which verifies on its
// own. The therapist must see that its id is not the one shared with,
// report it, and offer the journal to nobody until the relay serves the
// real chain. Later the relay serves a shorter copy of the real chain,
// from before a revocation, and the therapist reports the rollback and
// keeps its offer to the new user key.
func TestRelayCannotSwapSigchain(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist, proxy := h.member()
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	mallory := newClient(t, h.relay.url(), h.clientLogs)
	p := startPerson(t, ctx, laptop, phone)
	other, err := mallory.Person(ctx)
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, mallory)
	otherChain := h.author.w.call(&wire.GetChain{ID: other[:]}, func(uint64) {}).(*wire.Chain)
	if len(otherChain.Entries) != 1 {
		t.Fatalf("the other person's chain has %d entries on the relay, want 1", len(otherChain.Entries))
	}

	swap := func(m wire.Message) []wire.Message {
		if c, ok := m.(*wire.Chain); ok && bytes.Equal(c.ID, p[:]) {
			return []wire.Message{&wire.Chain{Ref: c.Ref, ID: c.ID, Entries: otherChain.Entries, Blobs: otherChain.Blobs}}
		}
		return []wire.Message{m}
	}
	proxy.set(swap, nil)
	doc := createJournal(t, ctx, therapist, "about next session")
	if err := therapist.ShareWithPerson(ctx, doc, p, membership.RoleWriter); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist, mallory, therapist, mallory)
	if offers, err := therapist.Offers(ctx, doc); err != nil || len(offers) != 0 {
		t.Errorf("with the swapped chain the therapist has %d offers waiting (%v), want none", len(offers), err)
	}
	reports, err := therapist.SigchainReports(ctx)
	if err != nil || len(reports) != 1 || reports[0].Kind != client.ReportSigchain {
		t.Fatalf("sigchain reports = %+v, %v; want one", reports, err)
	}
	if _, err := mallory.Text(doc); err == nil {
		t.Error("the other person reads the journal")
	}

	proxy.set(nil, nil)
	syncAll(t, ctx, therapist)
	if reports, err := therapist.SigchainReports(ctx); err != nil || len(reports) != 0 {
		t.Errorf("sigchain reports after the real chain = %+v, %v; want none", reports, err)
	}
	if _, err := laptop.UnlinkDevice(ctx, phone.Identity().Public().Sign); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop, therapist)

	proxy.set(func(m wire.Message) []wire.Message {
		if c, ok := m.(*wire.Chain); ok && bytes.Equal(c.ID, p[:]) && len(c.Entries) > 1 {
			return []wire.Message{&wire.Chain{Ref: c.Ref, ID: c.ID, Entries: c.Entries[:len(c.Entries)-1], Blobs: c.Blobs}}
		}
		return []wire.Message{m}
	}, nil)
	syncAll(t, ctx, therapist)
	reports, err = therapist.SigchainReports(ctx)
	if err != nil || len(reports) != 1 || !strings.Contains(reports[0].Detail, "older") {
		t.Errorf("sigchain reports after the rollback = %+v, %v; want one about an older chain", reports, err)
	}
	offers, err := therapist.Offers(ctx, doc)
	if err != nil || len(offers) != 1 {
		t.Fatalf("the therapist has %d offers waiting (%v), want the one to the new user key", len(offers), err)
	}
	syncAll(t, ctx, laptop, therapist, laptop, therapist, laptop)
	mustText(t, laptop, doc, "about next session")
}

// TestStrangerCannotAddDeviceToPerson has a stranger, who has the
// phone's public id, add the phone to the stranger's person. The phone
// has not linked the stranger, so it keeps the notice as a link request
// and stays out of that person: otherwise the phone's owner would hand
// out the stranger's person id, and journals shared with it would reach
// the stranger. Once the phone links a device, that device's request is
// accepted.
func TestStrangerCannotAddDeviceToPerson(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	stranger := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	if _, err := stranger.Person(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := stranger.LinkDevice(ctx, phone.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, stranger, phone, stranger, phone)
	if got, ok, err := phone.PersonOf(ctx); err != nil || ok {
		t.Fatalf("the phone belongs to person %v (%v, %v), want none", got, ok, err)
	}
	requests, err := phone.LinkRequests(ctx)
	if err != nil || len(requests) != 1 || requests[0].From.Fingerprint() != stranger.Identity().Public().Fingerprint() {
		t.Fatalf("link requests on the phone = %+v, %v; want the stranger's", requests, err)
	}

	own, err := laptop.Person(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.LinkDevice(ctx, phone.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop, phone)
	if _, ok, _ := phone.PersonOf(ctx); ok {
		t.Fatal("the phone joined a person before it linked the laptop")
	}
	if _, err := phone.LinkDevice(ctx, laptop.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, phone, laptop, phone)
	if got, ok, err := phone.PersonOf(ctx); err != nil || !ok || got != own {
		t.Errorf("after linking the laptop the phone belongs to %v (%v, %v), want the laptop's person", got, ok, err)
	}
	if _, _, gen := personDevices(t, ctx, phone); gen != 1 {
		t.Errorf("the phone has user key generation %d, want 1", gen)
	}
}

// BenchmarkShareWithPerson measures a share with a person id over a relay
// on loopback, from ShareWithPerson until both of the person's devices
// hold the journal. That takes the fetch of the sigchain, the offer to the
// person's inbox, the reply as the person, the addition, and the offer
// and reply between the linked devices. The three devices sync in turn,
// as running sessions would, and syncs/op counts the SyncOnce calls.
func BenchmarkShareWithPerson(b *testing.B) {
	ctx := context.Background()
	r := startRelay(b, &lockedBuffer{})
	therapist, laptop, phone := openBenchClient(b, r.url()), openBenchClient(b, r.url()), openBenchClient(b, r.url())
	p, err := laptop.Person(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, pair := range [][2]*client.Client{{laptop, phone}, {phone, laptop}} {
		if _, err := pair[0].LinkDevice(ctx, pair[1].Identity().Public()); err != nil {
			b.Fatal(err)
		}
	}
	all := []*client.Client{therapist, laptop, phone}
	syncEach := func() {
		for _, c := range all {
			if err := c.SyncOnce(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	for range 3 {
		syncEach()
	}
	syncs, shares := 0, 0
	for b.Loop() {
		b.StopTimer()
		doc, err := therapist.CreateDocument(ctx)
		if err == nil {
			err = therapist.SetText(ctx, doc, "homework")
		}
		if err == nil {
			err = therapist.SyncOnce(ctx)
		}
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := therapist.ShareWithPerson(ctx, doc, p, membership.RoleWriter); err != nil {
			b.Fatal(err)
		}
		shares++
		for rounds := 0; ; rounds++ {
			_, errLaptop := laptop.Text(doc)
			_, errPhone := phone.Text(doc)
			if errLaptop == nil && errPhone == nil {
				break
			}
			if rounds == 20 {
				b.Fatalf("after %d rounds the laptop (%v) and the phone (%v) do not both hold the journal", rounds, errLaptop, errPhone)
			}
			syncEach()
			syncs += len(all)
		}
	}
	b.ReportMetric(float64(syncs)/float64(shares), "syncs/op")
}

// TestTwoPersonsJoinOne has a laptop and a phone each start a person and
// then link each other. Each keeps its person and lists the other's
// notice as a request from a linked device, and JoinPerson moves the
// phone to the laptop's person, so a journal shared with that id reaches
// both. The laptop then removes the phone, and sharing with the phone's
// public id afterwards is refused.
func TestTwoPersonsJoinOne(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	own, err := laptop.Person(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := phone.Person(ctx)
	if err != nil {
		t.Fatal(err)
	}
	linkEachToEach(t, ctx, laptop, phone)
	if got, _, _ := phone.PersonOf(ctx); got != other {
		t.Fatalf("the phone moved to person %v by itself, want it to keep %v", got, other)
	}
	requests, err := phone.LinkRequests(ctx)
	if err != nil || len(requests) != 1 || !requests[0].Linked || requests[0].Person != own {
		t.Fatalf("link requests on the phone = %+v, %v; want the laptop's person, from a linked device", requests, err)
	}
	if err := phone.JoinPerson(ctx, client.PersonID{7}); !errors.Is(err, client.ErrNoLinkRequest) {
		t.Errorf("JoinPerson of a person nobody offered: err = %v, want ErrNoLinkRequest", err)
	}
	if err := phone.JoinPerson(ctx, own); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, phone, laptop, phone)
	if got, ok, err := phone.PersonOf(ctx); err != nil || !ok || got != own {
		t.Fatalf("after JoinPerson the phone belongs to %v (%v, %v), want the laptop's person", got, ok, err)
	}
	if active, _, gen := personDevices(t, ctx, phone); len(active) != 2 || gen != 1 {
		t.Errorf("the phone's copy of the chain lists %v at generation %d, want both devices at 1", active, gen)
	}
	if requests, err := phone.LinkRequests(ctx); err != nil || len(requests) != 0 {
		t.Errorf("link requests after joining = %+v, %v; want none", requests, err)
	}

	doc := createJournal(t, ctx, therapist, "one id for both devices")
	if err := therapist.ShareWithPerson(ctx, doc, own, membership.RoleWriter); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		syncAll(t, ctx, therapist, phone, laptop)
	}
	mustText(t, phone, doc, "one id for both devices")
	mustText(t, laptop, doc, "one id for both devices")

	if _, err := laptop.UnlinkDevice(ctx, phone.Identity().Public().Sign); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop)
	mine := createJournal(t, ctx, laptop, "after the phone was lost")
	if err := laptop.Share(ctx, mine, phone.Identity().Public()); !errors.Is(err, client.ErrRevokedDevice) {
		t.Errorf("sharing with the revoked phone: err = %v, want ErrRevokedDevice", err)
	}
	if _, err := laptop.LinkDevice(ctx, phone.Identity().Public()); !errors.Is(err, client.ErrRevokedDevice) {
		t.Errorf("linking the revoked phone again: err = %v, want ErrRevokedDevice", err)
	}
}

// TestTwoPersonsRevokeInBoth links a laptop and a phone, and requests
// each one's person id before either has synced, as a person does who reads
// the id on both screens. Each chain then lists both devices, and each
// device keeps its own person and reports the other as a request. The
// phone hands out its id. Once the phone is lost and unlinked on the
// laptop, the laptop revokes it in both chains, since it holds both user
// keys: a journal shared with the phone's id afterwards reaches the
// laptop, which reads that person's inbox too, and not the phone.
func TestTwoPersonsRevokeInBoth(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	if _, err := laptop.LinkDevice(ctx, phone.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	if _, err := phone.LinkDevice(ctx, laptop.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	fromLaptop, err := laptop.Person(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fromPhone, err := phone.Person(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		syncAll(t, ctx, laptop, phone)
	}
	requests, err := laptop.LinkRequests(ctx)
	if err != nil || len(requests) != 1 || !requests[0].Linked || requests[0].Person != fromPhone {
		t.Fatalf("link requests on the laptop = %+v, %v; want the phone's person, from a linked device", requests, err)
	}

	// The phone is lost, and the laptop unlinks it.
	if _, err := laptop.UnlinkDevice(ctx, phone.Identity().Public().Sign); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop, laptop)
	doc := createJournal(t, ctx, therapist, "after the loss")
	if err := therapist.ShareWithPerson(ctx, doc, fromPhone, membership.RoleWriter); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		syncAll(t, ctx, therapist, laptop, phone)
	}
	if got, err := phone.Text(doc); err == nil {
		t.Errorf("the lost phone reads %q, shared with the id it showed (%s; laptop showed %s)", got, fromPhone.String()[:12], fromLaptop.String()[:12])
	}
	mustText(t, laptop, doc, "after the loss")
}

// TestStrangerCannotTakePersonID has a stranger who saw the laptop's
// person id before the laptop's first sync store a chain of its own
// under that id. The relay must refuse it, since the id is the hash of
// the chain's first entry. Otherwise the laptop takes the rejection of
// its own chain for a chain it stored before. The person then never
// reaches the relay, so its phone never joins and no one can share with
// it.
func TestStrangerCannotTakePersonID(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	p, err := laptop.Person(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The scripted author plays the stranger.
	h.author.w.ref++
	h.author.w.send(&wire.PutChain{Ref: h.author.w.ref, ID: p[:], From: 0,
		Entries: [][]byte{bytes.Repeat([]byte{7}, 100)}, Writers: [][]byte{h.author.priv.Public().(ed25519.PublicKey)}})
	h.author.w.recv()

	linkEachToEach(t, ctx, laptop, phone)
	syncAll(t, ctx, laptop, phone, laptop, phone)
	if got, ok, _ := phone.PersonOf(ctx); !ok || got != p {
		t.Errorf("the phone belongs to %v (%v), want the laptop's person", got, ok)
	}
	if rs, _ := laptop.SigchainReports(ctx); len(rs) != 0 {
		t.Errorf("the laptop reports its own sigchain: %+v", rs)
	}
	got := h.author.w.call(&wire.GetChain{ID: p[:]}, func(uint64) {}).(*wire.Chain)
	if len(got.Entries) < 2 {
		t.Errorf("the relay holds %d entries of the person's chain, want the laptop's and the phone's", len(got.Entries))
	}
}

// TestRevokedDeviceUnlinkedEverywhere unlinks a lost phone on
// the laptop, which revokes it in the person's sigchain. The tablet, also
// linked to the phone, learns of the revocation from the chain. A journal
// the tablet starts afterwards must not be offered to the phone.
func TestRevokedDeviceUnlinkedEverywhere(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	tablet := newClient(t, h.relay.url(), h.clientLogs)
	startPerson(t, ctx, laptop, phone, tablet)
	if _, err := laptop.UnlinkDevice(ctx, phone.Identity().Public().Sign); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop, tablet, phone)
	if _, revoked, _ := personDevices(t, ctx, tablet); !revoked[phone.Identity().Public().Fingerprint()] {
		t.Fatalf("the tablet does not list the phone as revoked: %v", revoked)
	}
	doc := createJournal(t, ctx, tablet, "started on the tablet after the loss")
	for range 4 {
		syncAll(t, ctx, tablet, laptop, phone)
	}
	mustText(t, laptop, doc, "started on the tablet after the loss")
	if got, err := phone.Text(doc); err == nil {
		t.Errorf("the revoked phone reads %q", got)
	}
}

// TestStaleCopyStillRevokesLostDevice links a new phone from the
// tablet, which adds it to the person's sigchain, while the laptop is
// offline. The laptop, back and not yet synced, removes the phone as
// lost. Its copy of the chain does not list the phone yet, but the phone
// was added before the removal: the laptop must revoke it, so a journal
// shared with the person afterwards does not reach the phone.
func TestStaleCopyStillRevokesLostDevice(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	tablet := newClient(t, h.relay.url(), h.clientLogs)
	phone := newClient(t, h.relay.url(), h.clientLogs)
	p := startPerson(t, ctx, laptop, tablet)

	// The phone is set up with the tablet. The laptop links it too, but
	// stays offline.
	for _, pair := range [][2]*client.Client{{tablet, phone}, {phone, tablet}, {laptop, phone}, {phone, laptop}} {
		if _, err := pair[0].LinkDevice(ctx, pair[1].Identity().Public()); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		syncAll(t, ctx, tablet, phone)
	}
	if got, ok, _ := phone.PersonOf(ctx); !ok || got != p {
		t.Fatalf("the phone belongs to %v (%v), want the person", got, ok)
	}

	// The phone is lost, and the laptop removes it before its next sync.
	if _, err := laptop.UnlinkDevice(ctx, phone.Identity().Public().Sign); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		syncAll(t, ctx, laptop, tablet, phone)
	}
	if _, revoked, gen := personDevices(t, ctx, laptop); !revoked[phone.Identity().Public().Fingerprint()] {
		t.Errorf("after the laptop removed the lost phone, its chain lists revoked %v at generation %d; want the phone revoked", revoked, gen)
	}
	doc := createJournal(t, ctx, therapist, "shared after the phone was lost")
	if err := therapist.ShareWithPerson(ctx, doc, p, membership.RoleWriter); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		syncAll(t, ctx, therapist, phone, laptop, tablet)
	}
	if got, err := phone.Text(doc); err == nil {
		t.Errorf("the lost phone reads %q", got)
	}
}

// TestReplyAsLeftPersonSent has a new device show its person id, as the
// app's person button does, and a therapist share a journal with that id
// at once. The device then recovers the person of a lost laptop with the
// recovery phrase. In the first sync of the handover it reads the offer
// to its own person and queues the reply, then leaves that person, which
// lists it alone, for the recovered one. It keeps the person it left and
// its user key, so the reply must still go out and the journal reach
// the device.
func TestReplyAsLeftPersonSent(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	fresh := newClient(t, h.relay.url(), h.clientLogs)
	if _, err := laptop.Person(ctx); err != nil {
		t.Fatal(err)
	}
	phrase, err := keyring.NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	recoveryID, err := client.RecoveryIdentity(phrase)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := laptop.LinkRecoveryDevice(ctx, recoveryID); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, laptop)

	shownID, err := fresh.Person(ctx)
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, fresh)
	doc := createJournal(t, ctx, therapist, "shared with the id the new device showed")
	if err := therapist.ShareWithPerson(ctx, doc, shownID, membership.RoleWriter); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist)

	recovery := openRecoveryClient(t, h, recoveryID)
	if _, err := recovery.HandOver(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		syncAll(t, ctx, fresh, therapist)
	}
	if got, err := fresh.Text(doc); err != nil || got != "shared with the id the new device showed" {
		shares, _ := therapist.PersonShares(ctx, doc)
		t.Errorf("the new device reads %q (%v); the therapist's shares still waiting: %+v", got, err, shares)
	}
}
