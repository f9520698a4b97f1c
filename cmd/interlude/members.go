package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"

	"interlude/client"
	"interlude/sync/envelope"
)

// runDocInvite makes a one-time invitation link to a document.
func runDocInvite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("doc invite", stderr, true)
	setUsage(fs, "DOC", "Make a one-time invitation link to document DOC, send the invitation to\nthe relay, and print the link.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("doc invite takes one document id, got %s: see 'interlude doc invite -h'", argCount(fs.NArg()))
	}
	doc, err := envelope.ParseDocID(fs.Arg(0))
	if err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		link, err := c.Invite(ctx, doc)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, link)
		// The relay accepts an answer only for an invitation it has heard
		// of, so a sync now lets the invitee join at once.
		if err := c.SyncOnce(ctx); err != nil {
			fmt.Fprintf(stderr, "the invitation is saved, but sending it to the relay failed (%v): run 'interlude sync' before you send the link\n", err)
		}
		fmt.Fprintln(stderr, "send this link to one person over a channel you trust; it works once. After they join, run 'interlude sync' and 'interlude doc members' and compare the comparison code with them")
		return nil
	})
}

// runDocJoin responds to an invitation link.
func runDocJoin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("doc join", stderr, true)
	setUsage(fs, "LINK", "Answer the invitation LINK made by 'interlude doc invite', and print the\ncomparison code to check with the person who invited you.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("doc join takes one invitation link, got %s: see 'interlude doc join -h'", argCount(fs.NArg()))
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		code, err := c.AcceptInvite(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "comparison code %s\n", code)
		fmt.Fprintln(stderr, "compare this code with the person who invited you, by phone or in person; the document arrives on 'interlude sync' after their device has synced")
		return nil
	})
}

// runDocRemove removes a member and rotates the document key.
func runDocRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("doc remove", stderr, false)
	setUsage(fs, "DOC PUBLIC-ID", "Remove the member whose public id is PUBLIC-ID from document DOC. The\nnext 'interlude sync' sends the removal and rotates the document key.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("doc remove takes a document id and a member's public id, got %s: see 'interlude doc remove -h'", argCount(fs.NArg()))
	}
	doc, err := envelope.ParseDocID(fs.Arg(0))
	if err != nil {
		return err
	}
	member, err := client.ParsePublicID(fs.Arg(1))
	if err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		if err := c.RemoveMember(ctx, doc, member.Sign); err != nil {
			if errors.Is(err, client.ErrNotMember) {
				return fmt.Errorf("%w: 'interlude doc members %s' lists the ids to use", err, doc)
			}
			return err
		}
		fmt.Fprintf(stdout, "removing %s from %s; run 'interlude sync' to send it and rotate the document key\n", member.Fingerprint(), doc)
		return nil
	})
}

// runDocMembers lists a document's members, its membership code and the
// invitations this device made.
func runDocMembers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("doc members", stderr, false)
	setUsage(fs, "DOC", "List the members of document DOC with their roles, fingerprints and\npublic ids, the id this device is a member under, then its membership\ncode and the invitations this device made.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("doc members takes one document id, got %s: see 'interlude doc members -h'", argCount(fs.NArg()))
	}
	doc, err := envelope.ParseDocID(fs.Arg(0))
	if err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		members, err := c.Members(doc)
		if err != nil {
			return err
		}
		for _, m := range members {
			// The public id is what 'doc remove' takes, and the fingerprint
			// is what people compare.
			id := client.PublicID{Sign: ed25519.PublicKey(m.Sign[:]), Box: m.Box}
			fmt.Fprintf(stdout, "member\t%s\t%s\t%s\n", m.Role, id.Fingerprint(), id)
		}
		// A device is a member under its own key for each document it
		// created or joined by link, which 'id show' does not print.
		self, err := c.MemberID(doc)
		if err == nil {
			fmt.Fprintf(stdout, "this device\t%s\t%s\n", self.Fingerprint(), self)
		}
		// The person's other devices are listed, so someone removing a
		// lost device can find which ids are theirs.
		mine, err := c.PersonMembers(doc)
		if err != nil {
			return err
		}
		for _, m := range mine {
			if m.String() == self.String() {
				continue
			}
			dev, ok, err := c.LinkedDeviceOf(ctx, doc, m.Sign)
			if err != nil {
				return err
			}
			if !ok {
				fmt.Fprintf(stdout, "your device, not linked from here\t%s\t%s\n", m.Fingerprint(), m)
				continue
			}
			// The device's own fingerprint is the one 'device list'
			// prints and 'device remove' takes.
			fmt.Fprintf(stdout, "your linked device\t%s\t%s\tdevice %s\n", m.Fingerprint(), m, dev.Fingerprint())
		}
		if code, err := c.MembershipCode(doc); err == nil {
			fmt.Fprintf(stdout, "membership code\t%s\n", code)
		}
		invs, err := c.Invitations(ctx, doc)
		if err != nil {
			return err
		}
		for _, inv := range invs {
			switch {
			case inv.Accepted:
				fmt.Fprintf(stdout, "invitation\t%s\taccepted\tcomparison code %s\n", inv.ID[:12], inv.Code)
			case inv.Failed != "":
				fmt.Fprintf(stdout, "invitation\t%s\trefused\t%s\n", inv.ID[:12], inv.Failed)
			default:
				fmt.Fprintf(stdout, "invitation\t%s\topen\n", inv.ID[:12])
			}
		}
		offers, err := c.Offers(ctx, doc)
		if err != nil {
			return err
		}
		for _, o := range offers {
			role := "linked device"
			if o.Role != 0 {
				role = o.Role.String()
			}
			if o.ToPerson {
				fmt.Fprintf(stdout, "offer\t%s\tperson\twaiting for a reply\t%s\n", role, o.Person)
				continue
			}
			fmt.Fprintf(stdout, "offer\t%s\t%s\twaiting for a reply\t%s\n", role, o.To.Fingerprint(), o.To)
		}
		shares, err := c.PersonShares(ctx, doc)
		if err != nil {
			return err
		}
		for _, sh := range shares {
			if !sh.Offered {
				fmt.Fprintf(stdout, "offer\t%s\tperson\tnot sent: no such person on the relay yet\t%s\n", sh.Role, sh.Person)
			}
		}
		return nil
	})
}
