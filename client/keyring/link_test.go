package keyring

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestLinkDevice(t *testing.T) {
	existing := newTestDevice(t)
	chain, key, _, err := NewChain(existing)
	if err != nil {
		t.Fatal(err)
	}
	newDev := newTestDevice(t)

	// The new device shows its code; the person types it on the existing
	// device, in lower case and with the dashes left out.
	req, err := NewLinkRequest(newDev)
	if err != nil {
		t.Fatal(err)
	}
	code := req.Code()
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " "))
	read, err := ParseLinkRequest(typed)
	if err != nil {
		t.Fatal(err)
	}
	if read.Device != newDev.Public() || read.secret != req.secret {
		t.Fatal("parsed link request differs from the one shown")
	}

	// Both show the same comparison code.
	onExisting := read.ComparisonCode(existing.Public())
	if !regexp.MustCompile(`^\d{3} \d{3}$`).MatchString(onExisting) {
		t.Fatalf("comparison code %q: want six digits as \"123 456\"", onExisting)
	}
	resp, _, err := chain.Link(existing, key, read)
	if err != nil {
		t.Fatal(err)
	}
	onNew := req.ComparisonCode(resp.Existing)
	if onNew != onExisting {
		t.Fatalf("comparison codes differ: new device %q, existing %q", onNew, onExisting)
	}

	// The new device fetches the chain from the relay, verifies it, and
	// opens the user key.
	b, _ := chain.MarshalBinary()
	fetched, err := ParseChain(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := req.Finish(newDev, resp, fetched)
	if err != nil {
		t.Fatal(err)
	}
	if got.Public() != key.Public() {
		t.Error("new device opened another user key")
	}
	if d, ok := fetched.Device(newDev.Public().Sign); !ok || d.Revoked != 0 {
		t.Error("new device is not active in the sigchain")
	}
}

func TestLinkRejectsTamperedResponse(t *testing.T) {
	existing := newTestDevice(t)
	chain, key, _, err := NewChain(existing)
	if err != nil {
		t.Fatal(err)
	}
	newDev := newTestDevice(t)
	req, err := NewLinkRequest(newDev)
	if err != nil {
		t.Fatal(err)
	}
	resp, _, err := chain.Link(existing, key, req)
	if err != nil {
		t.Fatal(err)
	}

	// A relay that never saw the code responds in the existing device's
	// place: its own sigchain, with the new device added by its own device.
	relayDev := newTestDevice(t)
	relayChain, relayKey, _, err := NewChain(relayDev)
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := relayChain.Link(relayDev, relayKey, &LinkRequest{Device: newDev.Public()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := req.Finish(newDev, forged, relayChain); !errors.Is(err, ErrLinkMAC) {
		t.Errorf("forged response: err = %v, want ErrLinkMAC", err)
	}
	if req.ComparisonCode(forged.Existing) == req.ComparisonCode(existing.Public()) {
		t.Error("the forged response shows the genuine comparison code")
	}

	// Changing any field of the genuine response breaks the MAC.
	changes := map[string]func(r *LinkResponse){
		"existing": func(r *LinkResponse) { r.Existing = relayDev.Public() },
		"chain":    func(r *LinkResponse) { r.Chain[0] ^= 1 },
		"entry":    func(r *LinkResponse) { r.Entry[0] ^= 1 },
		"seed":     func(r *LinkResponse) { r.Seed.Sealed[0] ^= 1 },
		"mac":      func(r *LinkResponse) { r.MAC[31] ^= 1 },
	}
	for name, change := range changes {
		r := *resp
		r.Seed.Sealed = append([]byte(nil), resp.Seed.Sealed...)
		change(&r)
		if _, err := req.Finish(newDev, &r, chain); !errors.Is(err, ErrLinkMAC) {
			t.Errorf("changed %s: err = %v, want ErrLinkMAC", name, err)
		}
	}

	// The genuine response with someone else's sigchain is rejected too.
	if _, err := req.Finish(newDev, resp, relayChain); err == nil {
		t.Error("genuine response accepted with another sigchain")
	}
	if _, err := req.Finish(newDev, resp, chain); err != nil {
		t.Errorf("genuine response: %v", err)
	}
}

func TestParseLinkRequestRejectsTypo(t *testing.T) {
	req, err := NewLinkRequest(newTestDevice(t))
	if err != nil {
		t.Fatal(err)
	}
	code := req.Code()

	// Change each character after the prefix to another base32 character.
	for i := len(linkCodePrefix); i < len(code); i++ {
		if code[i] == '-' {
			continue
		}
		typo := []byte(code)
		if typo[i] == 'A' {
			typo[i] = 'B'
		} else {
			typo[i] = 'A'
		}
		if _, err := ParseLinkRequest(string(typo)); err == nil {
			t.Fatalf("typo at character %d of %q accepted", i, code)
		}
	}
	for _, bad := range []string{"", "IL1", code[:len(code)-4], "XX1" + code[3:]} {
		if _, err := ParseLinkRequest(bad); err == nil {
			t.Errorf("ParseLinkRequest(%q) succeeded", bad)
		}
	}
}

func fixedDevice(t *testing.T, n byte) PublicKeys {
	t.Helper()
	d, err := DeviceFromSeeds(bytes.Repeat([]byte{n}, 32), [32]byte{n})
	if err != nil {
		t.Fatal(err)
	}
	return d.Public()
}

func TestComparisonCode(t *testing.T) {
	a, b := fixedDevice(t, 1), fixedDevice(t, 2)
	secret := []byte("0123456789abcdef")

	if ComparisonCode(a, b, secret) != ComparisonCode(b, a, secret) {
		t.Error("code depends on which side computes it")
	}
	// Each input changes the code. Six digits collide by chance once in a
	// million, so the inputs are fixed and the test cannot flake.
	base := ComparisonCode(a, b, secret)
	c := fixedDevice(t, 3)
	if ComparisonCode(a, c, secret) == base {
		t.Error("other keys gave the same code")
	}
	if ComparisonCode(a, b, []byte("0123456789abcdeF")) == base {
		t.Error("another secret gave the same code")
	}
}

func FuzzParseLinkRequest(f *testing.F) {
	req, err := NewLinkRequest(newFuzzDevice(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(req.Code())
	f.Add("IL1-AAAA")
	f.Fuzz(func(t *testing.T, code string) {
		r, err := ParseLinkRequest(code)
		if err != nil {
			return
		}
		again, err := ParseLinkRequest(r.Code())
		if err != nil || again.Device != r.Device || again.secret != r.secret {
			t.Fatalf("re-encoded code does not parse to the same request: %v", err)
		}
	})
}
