package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"interlude/client"
	"interlude/client/badgerstore"
	"interlude/client/keyring"
	"interlude/client/securestore"
	"interlude/client/wstransport"
	"interlude/crdt"
	"interlude/sync/envelope"
)

// defaultRelay is the relay that 'interlude relay' serves with its default
// flags.
const defaultRelay = "ws://127.0.0.1:8080/v1/sync"

// profileFlags are the flags every client subcommand takes.
type profileFlags struct {
	profile string
	// passphraseFile names a file whose first line unlocks the profile's
	// encrypted identity file and store; empty for a profile that is not
	// encrypted.
	passphraseFile string
	relay          string
	verbose        bool
}

func newClientFlags(name string, stderr io.Writer, withRelay bool) (*flag.FlagSet, *profileFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	p := &profileFlags{}
	fs.StringVar(&p.profile, "profile", defaultProfile(), "profile `folder` with this device's identity and local store (env INTERLUDE_PROFILE)")
	fs.StringVar(&p.passphraseFile, "passphrase-file", os.Getenv("INTERLUDE_PASSPHRASE_FILE"), "`file` whose first line is the passphrase that encrypts this device's private keys and local store. The first command given it encrypts an identity file still in the clear, and a store that is still empty (env INTERLUDE_PASSPHRASE_FILE)")
	if withRelay {
		relay := os.Getenv("INTERLUDE_RELAY")
		if relay == "" {
			relay = defaultRelay
		}
		fs.StringVar(&p.relay, "relay", relay, "relay WebSocket `URL` (env INTERLUDE_RELAY)")
		fs.BoolVar(&p.verbose, "v", false, "log the sync session to stderr")
	}
	return fs, p
}

func defaultProfile() string {
	if p := os.Getenv("INTERLUDE_PROFILE"); p != "" {
		return p
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "interlude-profile"
	}
	return filepath.Join(dir, "interlude")
}

// openClient opens the profile's identity and store.
func openClient(ctx context.Context, p *profileFlags, stderr io.Writer) (*client.Client, error) {
	id, store, err := openProfile(ctx, p)
	if err != nil {
		return nil, err
	}
	logger := slog.New(slog.DiscardHandler)
	if p.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	c, err := client.Open(ctx, client.Config{
		Store:    store,
		Identity: id,
		Dialer:   wstransport.Dialer{},
		RelayURL: p.relay,
		Logger:   logger,
	})
	if err != nil {
		store.Close()
		return nil, err
	}
	return c, nil
}

// openProfile reads the profile's identity and opens its store, unlocking
// both with the passphrase file when one is given. An identity file still
// in the clear is encrypted under the passphrase only after the store has
// opened with it. A mistyped passphrase then fails on the store and
// changes nothing, instead of locking the identity under a passphrase that
// the store does not share.
func openProfile(ctx context.Context, p *profileFlags) (*client.Identity, client.Store, error) {
	pass, err := readPassphraseFile(p.passphraseFile)
	if err != nil {
		return nil, nil, err
	}
	// A conversion by 'id encrypt' that stopped early is finished first.
	if err := finishStoreConversion(p.profile); err != nil {
		return nil, nil, err
	}
	id, encrypted, err := readIdentity(p, pass)
	if err != nil {
		return nil, nil, err
	}
	raw, err := badgerstore.Open(filepath.Join(p.profile, storeDir))
	if err != nil {
		return nil, nil, err
	}
	store, err := unlockStore(ctx, raw, pass, p.passphraseFile)
	if err != nil {
		raw.Close()
		return nil, nil, err
	}
	if pass != nil && !encrypted {
		if err := client.EncryptIdentityFile(p.profile, *pass); err != nil {
			store.Close()
			return nil, nil, fmt.Errorf("encrypt the identity file with the passphrase in %s: %w", p.passphraseFile, err)
		}
	}
	return id, store, nil
}

// readIdentity reads the profile's identity file, opening it with pass when
// it is encrypted. encrypted reports whether the file is encrypted.
func readIdentity(p *profileFlags, pass *keyring.Passphrase) (id *client.Identity, encrypted bool, err error) {
	if pass == nil {
		id, err := client.ReadIdentityFile(p.profile)
		if errors.Is(err, client.ErrIdentityEncrypted) {
			return nil, true, errors.New("this profile's identity file is encrypted: pass --passphrase-file FILE with its passphrase")
		}
		return id, false, err
	}
	id, encrypted, err = client.ReadIdentityFileWithPassphrase(p.profile, *pass)
	if errors.Is(err, keyring.ErrWrongPassphrase) {
		return nil, true, fmt.Errorf("the passphrase in %s does not unlock this profile's identity file: check the file, and that --profile names the right profile", p.passphraseFile)
	}
	return id, encrypted, err
}

// readPassphraseFile returns the passphrase on the first line of file, or
// nil when file is empty. The line ends at "\n" or "\r\n", and the rest of
// the line is the passphrase as written, spaces included. keyring rejects
// only a passphrase of zero bytes and sets no minimum length, so this
// rejects a first line that is empty or only white space, which is a
// mistake rather than a choice.
func readPassphraseFile(file string) (*keyring.Passphrase, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read passphrase file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if strings.TrimSpace(line) == "" {
		return nil, fmt.Errorf("passphrase file %s has no passphrase on its first line: write the passphrase as the file's first line, followed by a newline", file)
	}
	pass := keyring.NewPassphrase(line)
	return &pass, nil
}

func runIDNew(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("id new", stderr, false)
	setUsage(fs, "", "Make this device's identity, its signing and encryption key pairs, in\nthe profile folder. With --passphrase-file the private keys are\nencrypted under the passphrase.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkNoArgs(fs); err != nil {
		return err
	}
	pass, err := readPassphraseFile(p.passphraseFile)
	if err != nil {
		return err
	}
	var id *client.Identity
	if pass == nil {
		id, err = client.CreateIdentityFile(p.profile)
	} else {
		id, err = client.CreateIdentityFileWithPassphrase(p.profile, *pass)
	}
	if err != nil {
		return err
	}
	printPublicID(id, stdout, stderr)
	return nil
}

func runIDShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("id show", stderr, false)
	setUsage(fs, "", "Print this device's public id to stdout, for others to share documents\nwith it, and its fingerprint to stderr.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkNoArgs(fs); err != nil {
		return err
	}
	if p.passphraseFile == "" {
		id, _, err := readIdentity(p, nil)
		if err != nil {
			return err
		}
		printPublicID(id, stdout, stderr)
		return nil
	}
	// openProfile checks the passphrase against the store before it
	// encrypts an identity file that is still in the clear.
	id, store, err := openProfile(ctx, p)
	if err != nil {
		return err
	}
	if err := store.Close(); err != nil {
		return err
	}
	printPublicID(id, stdout, stderr)
	return nil
}

// unlockStore wraps raw in an encrypted store when a passphrase is given,
// and rejects an encrypted store without one. passphraseFile names
// the passphrase's file in messages.
func unlockStore(ctx context.Context, raw client.Store, pass *keyring.Passphrase, passphraseFile string) (client.Store, error) {
	if pass == nil {
		encrypted := false
		err := raw.Scan(ctx, []byte(securestore.ReservedPrefix), func(_, _ []byte) error {
			encrypted = true
			return errStopScan
		})
		if err != nil && !errors.Is(err, errStopScan) {
			return nil, err
		}
		if encrypted {
			return nil, errors.New("this profile's store is encrypted: pass --passphrase-file FILE with its passphrase")
		}
		return raw, nil
	}
	unlock := securestore.PassphraseUnlocker{Passphrase: *pass}
	store, err := securestore.Open(ctx, raw, unlock, securestore.Options{})
	switch {
	case errors.Is(err, securestore.ErrWrongKey):
		return nil, fmt.Errorf("the passphrase in %s does not unlock this profile's store: check the file", passphraseFile)
	case errors.Is(err, securestore.ErrNotEncrypted):
		return nil, fmt.Errorf("this profile's store was made without a passphrase, so it does not open with one: run the command without --passphrase-file (%w)", err)
	}
	return store, err
}

var errStopScan = errors.New("stop scan")

// printPublicID writes the public id alone to stdout, so a script can take
// it with $(interlude id show), and the fingerprint to stderr for a person.
func printPublicID(id *client.Identity, stdout, stderr io.Writer) {
	fmt.Fprintln(stdout, id.PublicID())
	fmt.Fprintf(stderr, "fingerprint %s: compare it with what your other device shows when you link this one, or with someone who shares a document with this id. In documents you create or join by link you have an id of your own for each ('interlude doc members DOC')\n", id.Public().Fingerprint())
}

// withClient opens the profile's client, runs fn with it and closes it. It
// adds the next step to errors a person can act on.
func withClient(ctx context.Context, p *profileFlags, stderr io.Writer, fn func(c *client.Client) error) error {
	c, err := openClient(ctx, p, stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	return explain(fn(c))
}

// explain adds the next step to errors a person can act on.
func explain(err error) error {
	if errors.Is(err, client.ErrUnknownDocument) {
		return fmt.Errorf("%w: this profile does not have it; run 'interlude sync' to fetch documents shared with you, and 'interlude doc list' to see what is here", err)
	}
	return err
}

func runDocNew(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("doc new", stderr, false)
	setUsage(fs, "", "Make a new journal document with this device as its first admin, and\nprint its document id.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkNoArgs(fs); err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		id, err := c.CreateDocument(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, id)
		return nil
	})
}

func runDocList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("doc list", stderr, false)
	setUsage(fs, "", "List the documents in this profile, each with the number of its updates\nnot yet sent to the relay, or \"removed\" where a member removed this\ndevice.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkNoArgs(fs); err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		for _, id := range c.Documents() {
			switch st := c.Status(id); {
			case st.Removed:
				fmt.Fprintf(stdout, "%s\tremoved\n", id)
			case st.Pending > 0:
				fmt.Fprintf(stdout, "%s\t%d pending\n", id, st.Pending)
			default:
				fmt.Fprintf(stdout, "%s\tsynced\n", id)
			}
		}
		return nil
	})
}

func runDocShare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("doc share", stderr, false)
	setUsage(fs, "DOC PERSON-ID|PUBLIC-ID", "Share document DOC, as a writer, with the person whose id 'interlude id\nperson' prints, so it reaches all of that person's devices, or offer it\nto the one device whose public id 'interlude id show' prints. A device of\nthe person, or the device, replies with its own key for DOC: run\n'interlude sync' here, then on that device, then here again to add it.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("doc share takes a document id and a person id or public id, got %s: see 'interlude doc share -h'", argCount(fs.NArg()))
	}
	doc, err := envelope.ParseDocID(fs.Arg(0))
	if err != nil {
		return err
	}
	if isPersonID(fs.Arg(1)) {
		person, err := parsePersonArg(fs.Arg(1))
		if err != nil {
			return err
		}
		return withClient(ctx, p, stderr, func(c *client.Client) error {
			return shareWithPerson(ctx, c, doc, person, stdout, stderr)
		})
	}
	to, err := client.ParsePublicID(fs.Arg(1))
	if err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		if err := c.Share(ctx, doc, to); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "offered %s to %s\n", doc, to.Fingerprint())
		fmt.Fprintln(stderr, "check that the device's owner sees the same fingerprint in 'interlude id show'. That device replies with its own key for the document: run 'interlude sync' here, then on that device, then here to add it, then on that device to fetch the document")
		return nil
	})
}

func runDocWrite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("doc write", stderr, false)
	setUsage(fs, "DOC TEXT...", "Append TEXT to the journal of document DOC. Several arguments are joined\nwith single spaces.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return fmt.Errorf("doc write takes a document id and the text to append, got %s: see 'interlude doc write -h'", argCount(fs.NArg()))
	}
	doc, err := envelope.ParseDocID(fs.Arg(0))
	if err != nil {
		return err
	}
	text := strings.Join(fs.Args()[1:], " ")
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		return c.Edit(ctx, doc, func(t *crdt.Text) error { return t.Insert(t.Len(), text) })
	})
}

func runDocCat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("doc cat", stderr, false)
	setUsage(fs, "DOC", "Print the journal text of document DOC.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("doc cat takes one document id, got %s: see 'interlude doc cat -h'", argCount(fs.NArg()))
	}
	doc, err := envelope.ParseDocID(fs.Arg(0))
	if err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		text, err := c.Text(doc)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, text)
		return nil
	})
}

func runSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("sync", stderr, true)
	setUsage(fs, "", "Accept documents shared with this device, send local updates to the\nrelay and receive the updates of other devices.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkNoArgs(fs); err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		// Invitations refused before this sync were reported by the sync
		// that refused them.
		failedBefore := map[string]bool{}
		for _, id := range c.Documents() {
			invitations, err := c.Invitations(ctx, id)
			if err != nil {
				return err
			}
			for _, inv := range invitations {
				if inv.Failed != "" {
					failedBefore[inv.ID] = true
				}
			}
		}
		if err := c.SyncOnce(ctx); err != nil {
			return err
		}
		if err := printSigchainReports(ctx, c, stderr); err != nil {
			return err
		}
		if err := printLinkRequests(ctx, c, stderr); err != nil {
			return err
		}
		if err := printRevoked(ctx, c, stderr); err != nil {
			return err
		}
		for _, id := range c.Documents() {
			if c.Status(id).Removed {
				// The copy stays readable; a member removed this device.
				fmt.Fprintf(stdout, "%s\tremoved\n", id)
				continue
			}
			fmt.Fprintf(stdout, "%s\tsynced\n", id)
			// A refused answer to an invitation is news for the inviter,
			// who should make a new link.
			invitations, err := c.Invitations(ctx, id)
			if err != nil {
				return err
			}
			for _, inv := range invitations {
				if inv.Failed != "" && !failedBefore[inv.ID] {
					fmt.Fprintf(stderr, "%s\tinvitation %s refused: %s; make a new one with 'interlude doc invite'\n", id, inv.ID[:12], inv.Failed)
				}
			}
			// An offer waits until the device it went to syncs and
			// replies; a later sync here adds that device.
			offers, err := c.Offers(ctx, id)
			if err != nil {
				return err
			}
			for _, o := range offers {
				if o.ToPerson {
					fmt.Fprintf(stderr, "%s\toffered to person %s, waiting for one of its devices to sync and reply\n", id, o.Person)
					continue
				}
				fmt.Fprintf(stderr, "%s\toffered to %s, waiting for that device to sync and reply\n", id, o.To.Fingerprint())
			}
			if err := printWaitingPersonShares(ctx, c, id, stderr); err != nil {
				return err
			}
		}
		return nil
	})
}
