package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"interlude/client"
	"interlude/sync/envelope"
	"interlude/sync/membership"
)

func runIDPerson(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("id person", stderr, false)
	setUsage(fs, "", "Print the id of the person this device belongs to, for others to share\ndocuments with all of your devices at once. A device that belongs to no\nperson starts one with the devices linked to it; the next 'interlude\nsync' stores it on the relay.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkNoArgs(fs); err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		id, err := c.Person(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, id)
		devices, generation, err := c.PersonDevices(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "user key generation %d; devices:\n", generation)
		for _, d := range devices {
			state := "active"
			if d.Revoked {
				state = "revoked"
			}
			kind := "device"
			if d.Recovery {
				kind = "recovery phrase"
			}
			fmt.Fprintf(stderr, "  %s\t%s\t%s\n", d.Fingerprint(), kind, state)
		}
		fmt.Fprintln(stderr, "run 'interlude sync' to store new devices and changes on the relay; linked devices join on their next sync")
		return nil
	})
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
// device's public id.
func isPersonID(s string) bool { return strings.HasPrefix(strings.TrimSpace(s), "ilp1") }

// printLinkRequests prints the devices that added this one to their
// person and wait for it to link them.
func printLinkRequests(ctx context.Context, c *client.Client, stderr io.Writer) error {
	requests, err := c.LinkRequests(ctx)
	if err != nil {
		return err
	}
	for _, r := range requests {
		fmt.Fprintf(stderr, "device %s added this device to its person %s; if it is yours and shows that fingerprint, accept with 'interlude device link --fingerprint %s %s'\n", r.From.Fingerprint(), r.Person, r.From.Fingerprint(), r.From)
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
