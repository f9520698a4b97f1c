//go:build js && wasm

package main

// This file lists a journal's members and removes one, through the
// client's Members and RemoveMember. Removing a member starts a new key
// epoch, so a client who ended therapy, or a device the person lost,
// opens nothing written afterwards.

import (
	"context"
	"errors"
	"syscall/js"

	"interlude/client"
)

// members is the JavaScript members(docId). It resolves to [{publicID,
// fingerprint, role, you, yours}] for the journal's current members, where
// you marks this device and yours the other devices of this device's
// person that the membership log groups with it.
func (a *app) members(args []js.Value) any {
	doc, docErr := docArg(args, 0)
	return a.withClient(false, docErr, func(c *client.Client, _ client.Store) (any, error) {
		members, err := c.Members(doc)
		if err != nil {
			return nil, err
		}
		self, err := c.MemberID(doc)
		if err != nil {
			return nil, err
		}
		mine, err := c.PersonMembers(doc)
		if err != nil {
			return nil, err
		}
		yours := map[string]bool{}
		for _, m := range mine {
			yours[m.String()] = true
		}
		list := make([]any, 0, len(members))
		for _, m := range members {
			id := client.PublicID{Sign: m.Sign[:], Box: m.Box}
			list = append(list, map[string]any{
				"publicID":    id.String(),
				"fingerprint": id.Fingerprint(),
				"role":        m.Role.String(),
				"you":         id.String() == self.String(),
				"yours":       yours[id.String()],
			})
		}
		return list, nil
	})
}

// removeMember is the JavaScript removeMember(docId, publicID). It
// removes the member on the next sync, which starts a new key epoch, and
// resolves to {fingerprint}. Only an admin may remove (NotAdminError),
// and only a current member (NotMemberError).
func (a *app) removeMember(args []js.Value) any {
	doc, docErr := docArg(args, 0)
	id, idErr := stringArg(args, 1, "publicID")
	return a.withClient(true, errors.Join(docErr, idErr), func(c *client.Client, _ client.Store) (any, error) {
		member, err := client.ParsePublicID(id)
		if err != nil {
			return nil, named("InvalidPublicIDError", err)
		}
		err = c.RemoveMember(context.Background(), doc, member.Sign)
		switch {
		case errors.Is(err, client.ErrNotAdmin):
			return nil, named("NotAdminError", err)
		case errors.Is(err, client.ErrNotMember):
			return nil, named("NotMemberError", err)
		case err != nil:
			return nil, err
		}
		a.refresh(c, doc)
		return map[string]any{"fingerprint": member.Fingerprint()}, nil
	})
}
