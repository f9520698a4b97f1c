package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"interlude/client"
	"interlude/client/keyring"
	"interlude/client/wstransport"
)

// runDeviceLink links another device of the same person.
func runDeviceLink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("device link", stderr, true)
	fingerprint := fs.String("fingerprint", "", "the new device's `fingerprint`, as 'interlude id show' prints it there (required: it proves the public id arrived unchanged)")
	setUsage(fs, "PUBLIC-ID", "Link the device whose public id is PUBLIC-ID (run 'interlude id show' on it) as another device of yours: it is added, with this device's role, to every document this device is a member of, now and later.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("device link takes the new device's public id, got %s: see 'interlude device link -h'", argCount(fs.NArg()))
	}
	if isPersonID(fs.Arg(0)) {
		return fmt.Errorf("%q is a person id: device link takes the public id that 'interlude id show' prints on the new device", fs.Arg(0))
	}
	dev, err := client.ParsePublicID(fs.Arg(0))
	if err != nil {
		return err
	}
	switch {
	case strings.TrimSpace(*fingerprint) == "":
		// The fingerprint is not printed here: it must come from the
		// new device's screen, not from this device.
		return errors.New("device link needs --fingerprint: run 'interlude id show' on the new device and pass the fingerprint it prints")
	case normalFingerprint(*fingerprint) != normalFingerprint(dev.Fingerprint()):
		return fmt.Errorf("--fingerprint %q does not match this public id: the id changed on its way here or belongs to another device; copy it again from 'interlude id show' on the new device", *fingerprint)
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		n, err := c.LinkDevice(ctx, dev)
		if errors.Is(err, client.ErrRevokedDevice) {
			return fmt.Errorf("%w. On that device, run 'interlude id new --profile NEW-FOLDER' and link the new public id instead", err)
		}
		if err != nil {
			return err
		}
		if err := c.SyncOnce(ctx); err != nil {
			fmt.Fprintf(stderr, "the link is saved, but sending it to the relay failed (%v): run 'interlude sync' to retry\n", err)
		}
		fmt.Fprintf(stdout, "linked device %s, %s offered\n", dev.Fingerprint(), documents(n))
		fmt.Fprintln(stderr, "the new device replies to each offer with its own key for the document: run 'interlude sync' on the new device, then on this one, then on the new device again to fetch them. Link this device from the new one too, so it joins your person and documents shared with either reach both")
		return nil
	})
}

// runDeviceList prints the linked devices.
func runDeviceList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("device list", stderr, false)
	setUsage(fs, "", "Print the devices this device adds to its documents, those it linked, one per line as public id and fingerprint. A device that linked this one is listed only once this device links it too.")
	if err := parseFlags(fs, args); err != nil {
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
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("device remove takes one public id or fingerprint, got %s: see 'interlude device remove -h'", argCount(fs.NArg()))
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		dev, err := findDevice(ctx, c, fs.Arg(0))
		if err != nil {
			return err
		}
		n, err := c.UnlinkDevice(ctx, dev.Sign)
		var unsure *client.UnlinkUnsureError
		if err != nil && !errors.As(err, &unsure) {
			return err
		}
		if err := c.SyncOnce(ctx); err != nil {
			fmt.Fprintf(stderr, "the removal is saved, but sending it to the relay failed (%v): run 'interlude sync' to retry\n", err)
		}
		fmt.Fprintf(stdout, "removed device %s from %s\n", dev.Fingerprint(), documents(n))
		if devices, generation, err := c.PersonDevices(ctx); err == nil {
			for _, d := range devices {
				if d.Fingerprint() == dev.Fingerprint() && d.Revoked {
					fmt.Fprintf(stdout, "revoked device %s in your person, whose key is now generation %d: what others share with your person id from now on does not reach it\n", dev.Fingerprint(), generation)
				}
			}
		}
		if unsure != nil {
			for _, doc := range unsure.Docs {
				fmt.Fprintf(stderr, "check document %s: the removed device may still be a member there, under an id this device cannot match or in its own right where someone shared the document with it: see 'interlude doc members %s', and ask an admin to remove it if needed\n", doc, doc)
			}
		}
		return nil
	})
}

// normalFingerprint returns fingerprint s in upper case without dashes or
// spaces, so "c58d460d936a" and "C58D-460D-936A" compare equal.
func normalFingerprint(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(s)))
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
	want := normalFingerprint(s)
	for _, d := range devices {
		if normalFingerprint(d.Fingerprint()) == want {
			return d.PublicID, nil
		}
	}
	// After a recovery, the devices that held the documents are known
	// by the offers they made to the recovery phrase.
	offered, err := c.OfferedBy(ctx)
	if err != nil {
		return client.PublicID{}, err
	}
	for _, d := range offered {
		if normalFingerprint(d.Fingerprint()) == want {
			return d, nil
		}
	}
	// Devices of the person that another device linked are in the
	// sigchain. A revoked one is not offered: it is removed already.
	persons, _, err := c.PersonDevices(ctx)
	if err != nil && !errors.Is(err, client.ErrNoPerson) {
		return client.PublicID{}, err
	}
	for _, d := range persons {
		if normalFingerprint(d.Fingerprint()) != want {
			continue
		}
		if d.Revoked {
			return client.PublicID{}, fmt.Errorf("device %s is removed from your person already: 'interlude id person' lists it as revoked", d.Fingerprint())
		}
		return d.PublicID, nil
	}
	return client.PublicID{}, fmt.Errorf("%q is neither a public id nor the fingerprint of one of your devices: see 'interlude device list' and 'interlude id person'", s)
}

// runDeviceRecovery makes a recovery phrase and links the device it
// derives, so the phrase can bring the documents to a new device later.
func runDeviceRecovery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("device recovery", stderr, true)
	backupFile := fs.String("backup-passphrase-file", "", "`file` whose first line is a passphrase of at least 12 characters: the relay then also keeps the phrase sealed under it, so 'interlude device recover --backup-passphrase-file' needs only the passphrase")
	setUsage(fs, "", "Make a recovery phrase and print it once. The phrase derives one more device, which is linked to every document of yours like a device you own: with the phrase, 'interlude device recover' brings your documents to a new device after every other one is lost.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkNoArgs(fs); err != nil {
		return err
	}
	var backupPass *keyring.Passphrase
	if *backupFile != "" {
		var err error
		if backupPass, err = readPassphraseFile(*backupFile); err != nil {
			return err
		}
		// The check comes before anything is linked, so a rejected
		// passphrase leaves no recovery device whose words were never
		// shown.
		if err := keyring.CheckBackupPassphrase(*backupPass); err != nil {
			return err
		}
	}
	phrase, err := keyring.NewRecoveryPhrase()
	if err != nil {
		return err
	}
	recovery, err := client.RecoveryIdentity(phrase)
	if err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		n, err := c.LinkRecoveryDevice(ctx, recovery)
		if err != nil {
			return err
		}
		if err := c.SyncOnce(ctx); err != nil {
			fmt.Fprintf(stderr, "the recovery device is linked on this device, but sending it to the relay failed (%v): run 'interlude sync' before you rely on the phrase\n", err)
		}
		var backupErr error
		if backupPass != nil {
			// The recovery device is linked now, so its words are
			// printed even when the backup fails.
			if backupErr = c.StoreRecoveryBackup(ctx, phrase, *backupPass); backupErr == nil {
				fmt.Fprintln(stderr, "the relay now stores the phrase sealed under your backup passphrase. Anyone with a copy of the relay's data can try to guess that passphrase, so use a long one that you use nowhere else")
			}
		}
		fmt.Fprintln(stdout, phrase.Words())
		fmt.Fprintf(stderr, "recovery device %s linked to %s. Write the %d words above on paper and keep them safe: anyone with them can read your documents, and they are shown only this once. If you lose every device and these words, your documents are lost: nobody else holds a key. To stop a phrase working, run 'interlude device remove %s'.\n",
			recovery.Public().Fingerprint(), documents(n), keyring.RecoveryPhraseWords, recovery.Public().Fingerprint())
		if backupErr != nil {
			return fmt.Errorf("the phrase above works, but the relay does not keep a copy: %w", backupErr)
		}
		return nil
	})
}

// runDeviceRecover links this device from a recovery phrase.
func runDeviceRecover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("device recover", stderr, true)
	phraseFile := fs.String("phrase-file", "", "`file` whose first line is the recovery phrase (a file keeps the words out of the shell's history)")
	backupFile := fs.String("backup-passphrase-file", "", "`file` whose first line is the backup passphrase given to 'interlude device recovery', instead of --phrase-file: the phrase is then fetched from the relay")
	setUsage(fs, "", "Link this device to every document of yours, using the recovery phrase that 'interlude device recovery' printed, or the relay's copy of it under a backup passphrase. The recovery device runs in memory only, and nothing of it is written to disk.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkNoArgs(fs); err != nil {
		return err
	}
	if (*phraseFile == "") == (*backupFile == "") {
		return errors.New("device recover needs one of --phrase-file FILE, with the recovery phrase as the file's first line, or --backup-passphrase-file FILE, with the backup passphrase")
	}
	var phrase *keyring.RecoveryPhrase
	if *phraseFile != "" {
		var err error
		if phrase, err = readRecoveryPhrase(*phraseFile); err != nil {
			return err
		}
	}
	var backupPass *keyring.Passphrase
	if *backupFile != "" {
		var err error
		if backupPass, err = readPassphraseFile(*backupFile); err != nil {
			return err
		}
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		if phrase == nil {
			var err error
			if phrase, err = c.FetchRecoveryBackup(ctx, *backupPass); err != nil {
				return err
			}
		}
		recoveryID, err := client.RecoveryIdentity(phrase)
		if err != nil {
			return err
		}
		logger := slog.New(slog.DiscardHandler)
		if p.verbose {
			logger = slog.New(slog.NewTextHandler(stderr, nil))
		}
		recovery, err := client.Open(ctx, client.Config{
			Store:    client.NewMemoryStore(),
			Identity: recoveryID,
			Dialer:   wstransport.Dialer{},
			RelayURL: p.relay,
			Logger:   logger,
		})
		if err != nil {
			return err
		}
		defer recovery.Close()
		// The recovery device fetches its documents, offers each to this
		// device, and adds the key this device replies with.
		n, err := recovery.HandOver(ctx, c)
		if err != nil {
			return fmt.Errorf("recovery device: %w", err)
		}
		if n == 0 {
			return errors.New("the recovery phrase is a member of no document on this relay: check the relay URL, and that 'interlude device recovery' was synced on the device that made it")
		}
		// This device links the recovery device in turn, so that the
		// phrase also covers documents shared with this device later.
		if _, err := c.LinkRecoveryDevice(ctx, recoveryID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "this device is linked to %s\n", documents(n))
		offered, err := c.OfferedBy(ctx)
		if err != nil {
			return err
		}
		for _, d := range offered {
			fmt.Fprintf(stdout, "previous device\t%s\t%s\n", d.Fingerprint(), d)
		}
		fmt.Fprintln(stderr, "'interlude doc list' lists them. Remove each lost device with 'interlude device remove FINGERPRINT' (the previous devices are listed above), so nothing new opens with their keys. The device that made this phrase kept the root of its keys, so once it is lost, remove the phrase too ('interlude device remove "+recoveryID.Public().Fingerprint()+"') and make a new one with 'interlude device recovery'")
		return nil
	})
}

// readRecoveryPhrase parses the first line of file as a recovery phrase.
// Errors never quote the file's words.
func readRecoveryPhrase(file string) (*keyring.RecoveryPhrase, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read the recovery phrase file: %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read the recovery phrase file %s: %w", file, err)
	}
	return keyring.ParseRecoveryPhrase(line)
}

// documents returns "1 document" or "N documents".
func documents(n int) string {
	if n == 1 {
		return "1 document"
	}
	return fmt.Sprintf("%d documents", n)
}
