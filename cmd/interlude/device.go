package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"interlude/client"
)

// runDeviceLink links another device of the same person.
func runDeviceLink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("device link", stderr, true)
	fingerprint := fs.String("fingerprint", "", "the new device's `fingerprint`, as 'interlude id show' prints it there (required: it proves the public id arrived unchanged)")
	setUsage(fs, "PUBLIC-ID", "Link the device whose public id is PUBLIC-ID (run 'interlude id show' on it) as another device of yours: it is added, with this device's role, to every document this device is a member of, now and later.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("device link takes the new device's public id, got %d arguments: see 'interlude device link -h'", fs.NArg())
	}
	dev, err := client.ParsePublicID(fs.Arg(0))
	if err != nil {
		return err
	}
	got := dev.Fingerprint()
	switch want := strings.ToUpper(strings.TrimSpace(*fingerprint)); {
	case want == "":
		return fmt.Errorf("device link needs --fingerprint: run 'interlude id show' on the new device and pass the fingerprint it prints (this public id's is %s)", got)
	case want != got:
		return fmt.Errorf("the public id has fingerprint %s, but --fingerprint says %s: the id changed on its way here or belongs to another device; copy it again from 'interlude id show' on the new device", got, want)
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		n, err := c.LinkDevice(ctx, dev)
		if err != nil {
			return err
		}
		if err := c.SyncOnce(ctx); err != nil {
			fmt.Fprintf(stderr, "the link is saved, but sending it to the relay failed (%v): run 'interlude sync' to retry\n", err)
		}
		fmt.Fprintf(stdout, "linked device %s to %d documents\n", got, n)
		fmt.Fprintln(stderr, "run 'interlude sync' on the new device to fetch them")
		return nil
	})
}

// runDeviceList prints the linked devices.
func runDeviceList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("device list", stderr, false)
	setUsage(fs, "", "Print the devices this device adds to its documents: those it linked and the one that linked it, one per line as public id and fingerprint.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkNoArgs(fs); err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		devices, err := c.LinkedDevices(ctx)
		if err != nil {
			return err
		}
		for _, d := range devices {
			fmt.Fprintf(stdout, "%s %s\n", d, d.Fingerprint())
		}
		if len(devices) == 0 {
			fmt.Fprintln(stderr, "no linked devices: link one with 'interlude device link'")
		}
		return nil
	})
}

// runDeviceRemove unlinks a device, such as a lost phone.
func runDeviceRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("device remove", stderr, true)
	setUsage(fs, "DEVICE", "Remove DEVICE, a public id or the fingerprint of a linked device, from every document where it is a device of yours, and start a new key epoch in each, so nothing written afterwards opens with its keys.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("device remove takes one public id or fingerprint, got %d arguments: see 'interlude device remove -h'", fs.NArg())
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		dev, err := findDevice(ctx, c, fs.Arg(0))
		if err != nil {
			return err
		}
		n, err := c.UnlinkDevice(ctx, dev.Sign)
		if err != nil {
			return err
		}
		if err := c.SyncOnce(ctx); err != nil {
			fmt.Fprintf(stderr, "the removal is saved, but sending it to the relay failed (%v): run 'interlude sync' to retry\n", err)
		}
		fmt.Fprintf(stdout, "removed device %s from %d documents\n", dev.Fingerprint(), n)
		return nil
	})
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
	want := strings.ToUpper(strings.TrimSpace(s))
	for _, d := range devices {
		if d.Fingerprint() == want {
			return d, nil
		}
	}
	return client.PublicID{}, fmt.Errorf("%q is neither a public id nor the fingerprint of a linked device: see 'interlude device list'", s)
}
