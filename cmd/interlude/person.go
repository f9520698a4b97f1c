package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"interlude/client"
	"interlude/sync/envelope"
	"interlude/sync/membership"
)

func runIDPerson(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("id person", stderr, false)
	join := fs.String("join", "", "move this device to the person `ID` that a linked device added it to, as 'interlude sync' suggests when two of your devices each started a person")
	setUsage(fs, "", "Print the id of the person this device belongs to, for others to share\ndocuments with all of your devices at once. A device that belongs to no\nperson starts one with the devices linked to it; the next 'interlude\nsync' stores it on the relay.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkNoArgs(fs); err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		if *join != "" {
			target, err := parsePersonArg(*join)
			if err != nil {
				return err
			}
			if err := c.JoinPerson(ctx, target); err != nil {
				return err
			}
			fmt.Fprintf(stderr, "this device moved to person %s; run 'interlude sync' to fetch its keys\n", target)
		}
		if _, ok, err := c.PersonOf(ctx); err != nil {
			return err
		} else if !ok {
			// Starting a person here while a device of the person waits
			// for this one to accept would give the person two ids.
			if err := printLinkRequests(ctx, c, stderr); err != nil {
				return err
			}
		}
		id, err := c.Person(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, id)
		devices, generation, err := c.PersonDevices(ctx)
		if errors.Is(err, client.ErrNoPerson) {
			fmt.Fprintln(stderr, "this device has not fetched the person's list of devices yet: run 'interlude sync'")
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "user key generation %d; devices:\n", generation)
		self := c.Identity().Public().Fingerprint()
		for _, d := range devices {
			state := "active"
			if d.Revoked {
				state = "revoked"
			}
			kind := "device"
			if d.Recovery {
				kind = "recovery phrase"
			}
			if d.Fingerprint() == self {
				kind = "this device"
				if d.Revoked {
					fmt.Fprintln(stderr, "warning: another device of this person removed this device as lost, so what is shared with the person id no longer reaches it")
				}
			}
			fmt.Fprintf(stderr, "  %s\t%s\t%s\n", d.Fingerprint(), kind, state)
		}
		return nil
	})
}

// parsePersonArg parses a person id typed as an argument, with a hint
// for a device's public id given in its place.
func parsePersonArg(s string) (client.PersonID, error) {
	id, err := client.ParsePersonID(s)
	if err == nil {
		return id, nil
	}
	if _, perr := client.ParsePublicID(s); perr == nil {
		return id, fmt.Errorf("%q is a device's public id, not a person id: run 'interlude id person' on that person's device to get theirs", s)
	}
	return id, fmt.Errorf("%w: copy it again from 'interlude id person' on that person's device", err)
}

// shareWithPerson is 'doc share' for a person id.
func shareWithPerson(ctx context.Context, c *client.Client, doc envelope.DocID, to client.PersonID, stdout, stderr io.Writer) error {
	if err := c.ShareWithPerson(ctx, doc, to, membership.RoleWriter); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "shared %s with person %s\n", doc, to)
	fmt.Fprintln(stderr, "run 'interlude sync' here to offer it, then any device of that person syncs and replies, and the next sync here adds it")
	return nil
}

// isPersonID reports whether s looks like a person id rather than a
// device's public id, in any case, so a mangled one gets the person id's
// error.
func isPersonID(s string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(s)), "ilp1")
}

// printLinkRequests prints the devices that added this one to their
// person and wait for it to link them.
func printLinkRequests(ctx context.Context, c *client.Client, stderr io.Writer) error {
	requests, err := c.LinkRequests(ctx)
	if err != nil {
		return err
	}
	own, _, err := c.PersonOf(ctx)
	if err != nil {
		return err
	}
	for _, r := range requests {
		if r.Linked {
			fmt.Fprintf(stderr, "linked device %s belongs to person %s, and this device to person %s: give others one person id. To move this device to the first, run 'interlude id person --join %s'\n", r.From.Fingerprint(), r.Person, own, r.Person)
			continue
		}
		fmt.Fprintf(stderr, "device %s added this device to its person %s. If it is your device, run 'interlude id show' there and check that it prints fingerprint %s, then accept here with 'interlude device link --fingerprint FINGERPRINT %s', typing the fingerprint from that device's screen\n", r.From.Fingerprint(), r.Person, r.From.Fingerprint(), r.From)
	}
	return nil
}

// printWaitingPersonShares prints the shares of doc with persons whose
// sigchain the relay does not have, so no offer went out.
func printWaitingPersonShares(ctx context.Context, c *client.Client, doc envelope.DocID, stderr io.Writer) error {
	shares, err := c.PersonShares(ctx, doc)
	if err != nil {
		return err
	}
	for _, sh := range shares {
		if !sh.Offered {
			fmt.Fprintf(stderr, "%s\tshared with person %s, not sent: the relay has no person with this id. Check the id against 'interlude id person' on that person's device; a person started there is stored by its next sync\n", doc, sh.Person)
		}
	}
	return nil
}

// printRevoked warns on a device that another device of its person
// removed as lost.
func printRevoked(ctx context.Context, c *client.Client, stderr io.Writer) error {
	devices, _, err := c.PersonDevices(ctx)
	if errors.Is(err, client.ErrNoPerson) {
		return nil
	}
	if err != nil {
		return err
	}
	self := c.Identity().Public().Fingerprint()
	for _, d := range devices {
		if d.Fingerprint() == self && d.Revoked {
			fmt.Fprintln(stderr, "warning: another device of your person removed this device as lost: it keeps what it has, but receives nothing shared with your person from now on")
		}
	}
	return nil
}

// printSigchainReports prints each person whose sigchain the relay
// served last failed the checks.
func printSigchainReports(ctx context.Context, c *client.Client, stderr io.Writer) error {
	reports, err := c.SigchainReports(ctx)
	if err != nil {
		return err
	}
	for _, r := range reports {
		fmt.Fprintf(stderr, "warning: the relay served a sigchain of person %s that fails its checks, so shares with that person wait: %s\n", r.Author, r.Detail)
	}
	return nil
}
