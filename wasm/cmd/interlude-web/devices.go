//go:build js && wasm

package main

// This file links and unlinks the person's other devices through the
// client's LinkDevice, UnlinkDevice and LinkedDevices. Linking is done on
// the device that already holds the documents, with the new device's
// public id and the fingerprint the new device shows. The fingerprint is
// checked because a public id altered on its way here would otherwise add
// a stranger's device to every document.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall/js"
	"unicode"

	"interlude/client"
)

// errSameDevice rejects linking or unlinking this device itself.
var errSameDevice = named("SameDeviceError", errors.New("interlude: that public id is this device's own: use the public id and fingerprint shown on the other device"))

// linkDevice is the JavaScript linkDevice(publicID, fingerprint). It
// resolves to {documents, fingerprint}, where documents counts the
// documents the device is added to on the next sync.
func (a *app) linkDevice(args []js.Value) any {
	text, idErr := stringArg(args, 0, "publicID")
	typed, fingerprintErr := stringArg(args, 1, "fingerprint")
	return a.withClient(true, errors.Join(idErr, fingerprintErr), func(c *client.Client, _ client.Store) (any, error) {
		dev, err := client.ParsePublicID(text)
		if err != nil {
			return nil, named("InvalidPublicIDError", err)
		}
		if err := checkFingerprint(dev, typed); err != nil {
			return nil, err
		}
		if isThisDevice(c, dev) {
			return nil, errSameDevice
		}
		n, err := c.LinkDevice(context.Background(), dev)
		if err != nil {
			return nil, err
		}
		a.refreshAll(c)
		return map[string]any{"documents": n, "fingerprint": dev.Fingerprint()}, nil
	})
}

// unlinkDevice is the JavaScript unlinkDevice(publicIDOrFingerprint). It
// resolves to {documents, fingerprint, check}, where documents counts the
// documents the device is removed from, each with a new key epoch, on the
// next sync, and check lists the ids of documents with a member of this
// device's person that it cannot match to a device (client.UnlinkUnsureError).
func (a *app) unlinkDevice(args []js.Value) any {
	arg, argErr := stringArg(args, 0, "publicIDOrFingerprint")
	return a.withClient(true, argErr, func(c *client.Client, _ client.Store) (any, error) {
		ctx := context.Background()
		dev, err := findDevice(ctx, c, arg)
		if err != nil {
			return nil, err
		}
		if isThisDevice(c, dev) {
			return nil, errSameDevice
		}
		n, err := c.UnlinkDevice(ctx, dev.Sign)
		var unsure *client.UnlinkUnsureError
		if err != nil && !errors.As(err, &unsure) {
			return nil, err
		}
		a.refreshAll(c)
		check := []any{}
		if unsure != nil {
			for _, doc := range unsure.Docs {
				check = append(check, doc.String())
			}
		}
		return map[string]any{"documents": n, "fingerprint": dev.Fingerprint(), "check": check}, nil
	})
}

// linkedDevices is the JavaScript linkedDevices(). It resolves to
// [{publicID, fingerprint, recovery, previous}]: the devices this device
// linked and the one that linked it. recovery is true for a recovery
// phrase made on this device. After a recovery, the devices that held the
// documents before follow with previous set (client.OfferedBy), so the
// person can remove the lost ones.
func (a *app) linkedDevices([]js.Value) any {
	return a.withClient(false, nil, func(c *client.Client, store client.Store) (any, error) {
		ctx := context.Background()
		devices, err := c.LinkedDevices(ctx)
		if err != nil {
			return nil, err
		}
		list := make([]any, 0, len(devices))
		for _, d := range devices {
			recovery, err := isRecoveryDevice(ctx, store, d.PublicID)
			if err != nil {
				return nil, err
			}
			list = append(list, map[string]any{"publicID": d.String(), "fingerprint": d.Fingerprint(), "recovery": recovery, "previous": false})
		}
		previous, err := previousDevices(ctx, c)
		if err != nil {
			return nil, err
		}
		for _, d := range previous {
			list = append(list, map[string]any{"publicID": d.String(), "fingerprint": d.Fingerprint(), "recovery": false, "previous": true})
		}
		return list, nil
	})
}

// checkFingerprint rejects typed unless it is dev's fingerprint.
func checkFingerprint(dev client.PublicID, typed string) error {
	want := dev.Fingerprint()
	got := normalizeFingerprint(typed)
	switch {
	case got == "":
		return named("TypeError", errors.New("interlude: the fingerprint is empty: pass the fingerprint the new device shows, which proves its public id arrived unchanged"))
	case got != normalizeFingerprint(want):
		return named("FingerprintMismatchError", fmt.Errorf("interlude: the public id has fingerprint %s, but the fingerprint given is %q: the id changed on its way here or belongs to another device; copy it again from the new device", want, strings.TrimSpace(typed)))
	}
	return nil
}

// normalizeFingerprint drops spaces and hyphens and upper-cases the rest,
// so "ab12 cd34 ef56" and "AB12-CD34-EF56" compare equal. All twelve hex
// digits are still compared.
func normalizeFingerprint(s string) string {
	withoutSeparators := strings.Map(func(r rune) rune {
		if r == '-' || unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	return strings.ToUpper(withoutSeparators)
}

// findDevice resolves a public id, or the fingerprint of a linked device.
func findDevice(ctx context.Context, c *client.Client, s string) (client.PublicID, error) {
	if id, err := client.ParsePublicID(s); err == nil {
		return id, nil
	}
	devices, err := c.LinkedDevices(ctx)
	if err != nil {
		return client.PublicID{}, err
	}
	previous, err := previousDevices(ctx, c)
	if err != nil {
		return client.PublicID{}, err
	}
	want := normalizeFingerprint(s)
	var found []client.PublicID
	for _, d := range devices {
		if normalizeFingerprint(d.Fingerprint()) == want {
			found = append(found, d.PublicID)
		}
	}
	for _, d := range previous {
		if normalizeFingerprint(d.Fingerprint()) == want {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return client.PublicID{}, named("UnknownDeviceError", fmt.Errorf("interlude: %q is neither a public id nor the fingerprint of a linked device: see linkedDevices()", s))
	}
	// Fingerprints are 48 bits, so someone could make a device whose
	// fingerprint equals a linked one's.
	return client.PublicID{}, named("UnknownDeviceError", fmt.Errorf("interlude: %d linked devices have fingerprint %q: pass the public id of the one to unlink", len(found), s))
}

// previousDevices returns the devices that offered the recovery phrase
// this device recovered with its documents and are still a member of one
// here (client.PreviousDevices), except linked ones.
func previousDevices(ctx context.Context, c *client.Client) ([]client.PublicID, error) {
	offered, err := c.PreviousDevices(ctx)
	if err != nil {
		return nil, err
	}
	linked, err := c.LinkedDevices(ctx)
	if err != nil {
		return nil, err
	}
	var out []client.PublicID
	for _, d := range offered {
		isLinked := false
		for _, l := range linked {
			if l.String() == d.String() {
				isLinked = true
			}
		}
		if !isLinked && !isThisDevice(c, d) {
			out = append(out, d)
		}
	}
	return out, nil
}

// refreshAll refreshes the view of every document, so that status shows
// the membership changes queued for the next sync once the Promise
// resolves.
func (a *app) refreshAll(c *client.Client) {
	for _, doc := range c.Documents() {
		a.refresh(c, doc)
	}
}

func isThisDevice(c *client.Client, dev client.PublicID) bool {
	return bytes.Equal(dev.Sign, c.Identity().Public().Sign)
}

// person is the JavaScript person(). It starts a person on a device that
// belongs to none, with the devices linked to it, and resolves to
// {personID, generation, devices}. The devices are listed once this
// device has fetched the sigchain, after its next sync.
func (a *app) person([]js.Value) any {
	return a.withClient(true, nil, func(c *client.Client, _ client.Store) (any, error) {
		ctx := context.Background()
		id, err := c.Person(ctx)
		if err != nil {
			return nil, err
		}
		devices, generation, err := c.PersonDevices(ctx)
		if err != nil && !errors.Is(err, client.ErrNoPerson) {
			return nil, err
		}
		list := make([]any, 0, len(devices))
		for _, d := range devices {
			list = append(list, map[string]any{"fingerprint": d.Fingerprint(), "recovery": d.Recovery, "revoked": d.Revoked})
		}
		return map[string]any{"personID": id.String(), "generation": float64(generation), "devices": list}, nil
	})
}

// linkRequests is the JavaScript linkRequests(). It resolves to
// [{publicID, fingerprint, person, linked}].
func (a *app) linkRequests([]js.Value) any {
	return a.withClient(false, nil, func(c *client.Client, _ client.Store) (any, error) {
		requests, err := c.LinkRequests(context.Background())
		if err != nil {
			return nil, err
		}
		list := make([]any, 0, len(requests))
		for _, r := range requests {
			list = append(list, map[string]any{"publicID": r.From.String(), "fingerprint": r.From.Fingerprint(), "person": r.Person.String(), "linked": r.Linked})
		}
		return list, nil
	})
}

// joinPerson is the JavaScript joinPerson(personID): it moves this
// device to the person a linked device added it to.
func (a *app) joinPerson(args []js.Value) any {
	text, argErr := stringArg(args, 0, "personID")
	return a.withClient(true, argErr, func(c *client.Client, _ client.Store) (any, error) {
		p, err := client.ParsePersonID(text)
		if err != nil {
			return nil, named("InvalidPublicIDError", err)
		}
		if err := c.JoinPerson(context.Background(), p); err != nil {
			return nil, err
		}
		a.refreshAll(c)
		return map[string]any{"personID": p.String()}, nil
	})
}
