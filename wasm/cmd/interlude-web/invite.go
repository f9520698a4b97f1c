//go:build js && wasm

package main

// This file invites a person to a document by a one-time link and
// responds to such links, through the client's Invite, Invitations and
// AcceptInvite.
// The link's secret is in its fragment, which browsers never send to a
// server, and the page removes it from the address bar once it is used.

import (
	"bytes"
	"context"
	"errors"
	"syscall/js"

	"interlude/client"
	"interlude/client/keyring"
	"interlude/sync/envelope"
	"interlude/sync/wire"
)

// errOwnInvitation rejects a response to a link made on this device,
// which would use the link up without adding anyone.
var errOwnInvitation = named("SameDeviceError", errors.New("interlude: this invitation link was made on this device: send it to the person you invite, and let them open it"))

// invite is the JavaScript invite(docId). It resolves to {link, synced}.
// synced is false when the sync that registers the invitation with the
// relay failed, and the relay rejects responses to the link until this
// device has synced.
func (a *app) invite(args []js.Value) any {
	doc, docErr := docArg(args, 0)
	return a.withClient(true, docErr, func(c *client.Client, _ client.Store) (any, error) {
		link, err := c.Invite(context.Background(), doc)
		switch {
		case errors.Is(err, client.ErrNotAdmin):
			return nil, named("NotAdminError", err)
		case err != nil:
			return nil, err
		}

		synced := true
		if err := a.resync(c); err != nil {
			a.log.Warn("sync after making an invitation failed, so the link works only after the next sync", "doc", doc, "err", err)
			synced = false
		}
		return map[string]any{"link": link, "synced": synced}, nil
	})
}

// invitations is the JavaScript invitations(docId). It resolves to
// [{id, accepted, code, invitee, inviteeFingerprint, failed}]: the
// invitations this device made to the document. code, invitee and
// inviteeFingerprint are set once the invitee's response is accepted,
// and failed contains why a response was rejected, which uses the link
// up.
func (a *app) invitations(args []js.Value) any {
	doc, docErr := docArg(args, 0)
	return a.withClient(false, docErr, func(c *client.Client, _ client.Store) (any, error) {
		found, err := c.Invitations(context.Background(), doc)
		if err != nil {
			return nil, err
		}
		list := make([]any, 0, len(found))
		for _, inv := range found {
			fingerprint := ""
			if id, err := client.ParsePublicID(inv.Invitee); err == nil {
				fingerprint = id.Fingerprint()
			}
			list = append(list, map[string]any{
				"id":                 inv.ID,
				"accepted":           inv.Accepted,
				"code":               inv.Code,
				"invitee":            inv.Invitee,
				"inviteeFingerprint": fingerprint,
				"failed":             inv.Failed,
			})
		}
		return list, nil
	})
}

// acceptInvite is the JavaScript acceptInvite(link). It sends this
// device's response to the relay and resolves to {code}, the comparison
// code the invitee compares with the inviter. The document arrives once
// the inviter's device has taken the response in a sync and this device
// syncs.
func (a *app) acceptInvite(args []js.Value) any {
	link, linkErr := stringArg(args, 0, "link")
	return a.withClient(true, linkErr, func(c *client.Client, _ client.Store) (any, error) {
		// Parsing here first gives a malformed link its own error name,
		// without a connection to the relay.
		inv, err := keyring.ParseInvitationLink(link)
		if err != nil {
			return nil, named("InvalidInvitationError", err)
		}
		// The inviter signs the link with its key for the document, so
		// a link made here names this device's member key there.
		if self, err := c.MemberID(envelope.DocID(inv.Doc)); err == nil && bytes.Equal(inv.Inviter.Sign[:], self.Sign) {
			return nil, errOwnInvitation
		}

		var code string
		err = a.withRelay(func(ctx context.Context) error {
			var err error
			code, err = c.AcceptInvite(ctx, link)
			return err
		})
		var relayErr *wire.Error
		if errors.As(err, &relayErr) {
			switch relayErr.Code {
			case wire.CodeNotFound:
				return nil, named("InvitationNotFoundError", err)
			case wire.CodeInvitationUsed:
				return nil, named("InvitationUsedError", err)
			}
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"code": code}, nil
	})
}
