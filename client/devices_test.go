package client_test

import (
	"slices"
	"strings"
	"testing"

	"interlude/client"
	"interlude/sync/envelope"
	"interlude/sync/membership"
)

// TestLinkedDeviceReadsAndWrites links a client's phone from the laptop
// that a therapist shared a journal with. The phone reads and writes the
// journal as a writer, and a journal shared later with the phone alone
// reaches the laptop too. After the laptop unlinks the phone, nothing
// written afterwards opens with any key the phone holds.
func TestLinkedDeviceReadsAndWrites(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	laptop, laptopProxy := h.member()
	phone := newClient(t, h.relay.url(), h.clientLogs)

	doc, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	share(t, ctx, therapist, doc, laptop)
	if err := therapist.SetText(ctx, doc, "prompt: "); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist, laptop)

	// 1. Link the phone from the laptop: the journal is offered to it.
	//    The laptop sends the offer, the phone replies with its key for
	//    the journal, the laptop adds that key, and the phone fetches it.
	n, err := laptop.LinkDevice(ctx, phone.Identity().Public())
	if err != nil {
		t.Fatalf("LinkDevice: %v", err)
	}
	if n != 1 {
		t.Errorf("LinkDevice offered %d documents, want 1", n)
	}
	syncAll(t, ctx, laptop, phone, laptop, phone)
	mustText(t, phone, doc, "prompt: ")
	if _, ok := findMemberKey(t, laptop, doc, phone.Identity().Public().Sign); ok {
		t.Error("the journal names the phone's device key; want only its key for the journal")
	}
	role := memberRole(t, therapist, doc, phone)
	syncAll(t, ctx, therapist)
	if role = memberRole(t, therapist, doc, phone); role != membership.RoleWriter {
		t.Errorf("the phone's role is %s, want writer like the laptop", role)
	}

	// 2. The phone writes; the therapist reads it.
	if err := phone.SetText(ctx, doc, "prompt: slept badly"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, phone, therapist, laptop)
	mustText(t, therapist, doc, "prompt: slept badly")
	mustText(t, laptop, doc, "prompt: slept badly")

	// 3. The phone links the laptop in turn, so a journal shared with the
	//    phone alone reaches the laptop.
	if _, err := phone.LinkDevice(ctx, laptop.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	second, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	share(t, ctx, therapist, second, phone)
	if err := therapist.SetText(ctx, second, "mood log"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist, phone, laptop, phone, laptop)
	mustText(t, laptop, second, "mood log")
	linked, err := phone.LinkedDevices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(linked) != 1 || linked[0].String() != laptop.Identity().PublicID() {
		t.Errorf("the phone's linked devices are %v, want the laptop", linked)
	}

	// 4. The phone is lost: the laptop unlinks it from both journals.
	n, err = laptop.UnlinkDevice(ctx, phone.Identity().Public().Sign)
	if err != nil {
		t.Fatalf("UnlinkDevice: %v", err)
	}
	if n != 2 {
		t.Errorf("UnlinkDevice changed %d documents, want 2", n)
	}
	syncAll(t, ctx, laptop)
	phoneKeys := client.EpochKeysForTest(phone, doc)
	if len(phoneKeys) == 0 {
		t.Fatal("the phone holds no key of the journal; the check below would prove nothing")
	}
	// The therapist writes before it has synced the removal: the edit is
	// sealed again under the new epoch before it is sent.
	before := len(laptopProxy.deliveredEnvelopes())
	if err := therapist.SetText(ctx, doc, "prompt: slept badly. next week: sleep diary"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, therapist, laptop)
	mustText(t, laptop, doc, "prompt: slept badly. next week: sleep diary")
	later := laptopProxy.deliveredEnvelopes()[before:]
	if len(later) == 0 {
		t.Fatal("no envelope delivered after the unlink; the check below would prove nothing")
	}
	for i, raw := range later {
		env, err := envelope.Unmarshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		for j, k := range phoneKeys {
			if _, err := env.Open((*[envelope.KeySize]byte)(k)); err == nil {
				t.Errorf("envelope %d written after the unlink opens with the phone's key %d", i, j)
			}
		}
	}
	// The relay serves the phone the journal's log up to its removal and
	// nothing after it, so the phone learns that it was removed.
	if err := phone.SyncOnce(ctx); err != nil {
		t.Errorf("the unlinked phone's sync: %v", err)
	}
	if !phone.Status(doc).Removed {
		t.Error("the unlinked phone does not report its removal from the journal")
	}
	if got, _ := phone.Text(doc); strings.Contains(got, "sleep diary") {
		t.Errorf("the unlinked phone reads %q", got)
	}
	if _, ok := findMember(t, therapist, doc, phone); ok {
		// The therapist synced before the removal; sync again to see it.
		syncAll(t, ctx, therapist)
		if _, ok := findMember(t, therapist, doc, phone); ok {
			t.Error("the therapist still lists the unlinked phone as a member")
		}
	}
	for _, c := range []*client.Client{therapist, laptop} {
		if rs := reports(t, c, doc); len(rs) != 0 {
			t.Errorf("%s has reports %+v, want none", c.Identity(), rs)
		}
	}
}

// TestStrangerCannotClaimDevice has a stranger create a journal and add
// the client's laptop to it as the stranger's own device. The laptop
// must not take the stranger for a device of its person: the journal the
// laptop shares with its therapist does not reach the stranger.
func TestStrangerCannotClaimDevice(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	stranger := newClient(t, h.relay.url(), h.clientLogs)

	private, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	share(t, ctx, therapist, private, laptop)
	syncAll(t, ctx, therapist, laptop)

	bait, err := stranger.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The stranger links the laptop as if it were its own device: bait
	// gets an add_device entry naming the laptop.
	if _, err := stranger.LinkDevice(ctx, laptop.Identity().Public()); err != nil {
		t.Fatal(err)
	}
	syncAll(t, ctx, stranger, laptop, stranger, laptop, laptop, therapist)
	if _, ok := findMember(t, laptop, bait, laptop); !ok {
		t.Fatal("the laptop did not get the bait journal; the check below would prove nothing")
	}
	if linked, err := laptop.LinkedDevices(ctx); err != nil || len(linked) != 0 {
		t.Errorf("the laptop's linked devices are %v (err %v), want none", linked, err)
	}
	if _, ok := findMember(t, therapist, private, stranger); ok {
		t.Error("the stranger became a member of the laptop's private journal")
	}
}

// TestLinkRules checks the changes linking refuses or skips.
func TestLinkRules(t *testing.T) {
	h := newHarness(t)
	ctx := h.ctx
	therapist := newClient(t, h.relay.url(), h.clientLogs)
	laptop := newClient(t, h.relay.url(), h.clientLogs)
	other := newClient(t, h.relay.url(), h.clientLogs)

	doc, err := therapist.CreateDocument(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{laptop, other} {
		share(t, ctx, therapist, doc, c)
	}
	syncAll(t, ctx, therapist, laptop, other)

	if _, err := laptop.LinkDevice(ctx, laptop.Identity().Public()); err == nil {
		t.Error("a device links itself without error")
	}
	// Another person's device, a member under its key for the journal,
	// is offered the journal: the laptop cannot tell that key.
	if n, err := laptop.LinkDevice(ctx, other.Identity().Public()); err != nil || n != 1 {
		t.Errorf("linking a member under its document key offered %d documents, err %v; want 1, nil", n, err)
	}
	// Unlinking another person's device changes no document: only an
	// admin removes other people.
	if n, err := laptop.UnlinkDevice(ctx, other.Identity().Public().Sign); err != nil || n != 0 {
		t.Errorf("unlinking another person changed %d documents, err %v; want 0, nil", n, err)
	}
	syncAll(t, ctx, laptop, therapist)
	if _, ok := findMember(t, therapist, doc, other); !ok {
		t.Error("the other person is no longer a member")
	}
}

func findMember(t *testing.T, c *client.Client, doc envelope.DocID, of *client.Client) (membership.Member, bool) {
	t.Helper()
	members, err := c.Members(doc)
	if err != nil {
		t.Fatal(err)
	}
	// of is a member under its device key, or under its key for doc.
	want := [][32]byte{[32]byte(of.Identity().Public().Sign)}
	if id, err := of.MemberID(doc); err == nil {
		want = append(want, [32]byte(id.Sign))
	}
	for _, m := range members {
		if slices.Contains(want, m.Sign) {
			return m, true
		}
	}
	return membership.Member{}, false
}

func findMemberKey(t *testing.T, c *client.Client, doc envelope.DocID, key []byte) (membership.Member, bool) {
	t.Helper()
	members, err := c.Members(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if m.Sign == [32]byte(key) {
			return m, true
		}
	}
	return membership.Member{}, false
}

func memberRole(t *testing.T, c *client.Client, doc envelope.DocID, of *client.Client) membership.Role {
	t.Helper()
	m, _ := findMember(t, c, doc, of)
	return m.Role
}
