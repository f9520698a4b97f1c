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
	// encrypted store; empty for a store that is not encrypted.
	passphraseFile string
	relay          string
	verbose        bool
}

func newClientFlags(name string, stderr io.Writer, withRelay bool) (*flag.FlagSet, *profileFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	p := &profileFlags{}
	fs.StringVar(&p.profile, "profile", defaultProfile(), "profile `folder` with this device's identity and local store (env INTERLUDE_PROFILE)")
	fs.StringVar(&p.passphraseFile, "passphrase-file", os.Getenv("INTERLUDE_PASSPHRASE_FILE"), "`file` whose first line is the passphrase that encrypts the local store; the first command that opens the store with it encrypts it (env INTERLUDE_PASSPHRASE_FILE)")
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
	id, err := client.ReadIdentityFile(p.profile)
	if err != nil {
		return nil, err
	}
	raw, err := badgerstore.Open(filepath.Join(p.profile, "store"))
	if err != nil {
		return nil, err
	}
	store, err := unlockStore(ctx, raw, p.passphraseFile)
	if err != nil {
		raw.Close()
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

func runIDNew(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("id new", stderr, false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := client.CreateIdentityFile(p.profile)
	if err != nil {
		return err
	}
	printPublicID(id, stdout, stderr)
	return nil
}

func runIDShow(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("id show", stderr, false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	id, err := client.ReadIdentityFile(p.profile)
	if err != nil {
		return err
	}
	printPublicID(id, stdout, stderr)
	return nil
}

// unlockStore wraps raw in an encrypted store when a passphrase file is
// given, and refuses to open an encrypted store without one.
func unlockStore(ctx context.Context, raw client.Store, passphraseFile string) (client.Store, error) {
	if passphraseFile == "" {
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
	b, err := os.ReadFile(passphraseFile)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return nil, fmt.Errorf("passphrase file %s is empty: write the passphrase on its first line", passphraseFile)
	}
	unlock := securestore.PassphraseUnlocker{Passphrase: keyring.NewPassphrase(line)}
	store, err := securestore.Open(ctx, raw, unlock, securestore.Options{})
	if errors.Is(err, securestore.ErrWrongKey) {
		return nil, fmt.Errorf("the passphrase in %s does not unlock this profile's store: check the file", passphraseFile)
	}
	return store, err
}

var errStopScan = errors.New("stop scan")

// printPublicID writes the public id alone to stdout, so a script can take
// it with $(interlude id show), and the fingerprint to stderr for a person.
func printPublicID(id *client.Identity, stdout, stderr io.Writer) {
	fmt.Fprintln(stdout, id.PublicID())
	fmt.Fprintf(stderr, "fingerprint %s: compare it with the person you share with\n", id.Public().Fingerprint())
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
	if err := fs.Parse(args); err != nil {
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		for _, id := range c.Documents() {
			if st := c.Status(id); st.Pending > 0 {
				fmt.Fprintf(stdout, "%s\t%d pending\n", id, st.Pending)
			} else {
				fmt.Fprintf(stdout, "%s\tsynced\n", id)
			}
		}
		return nil
	})
}

func runDocShare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("doc share", stderr, false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return fmt.Errorf("doc share takes a document id and a public id, got %d arguments", fs.NArg())
	}
	doc, err := envelope.ParseDocID(fs.Arg(0))
	if err != nil {
		return err
	}
	to, err := client.ParsePublicID(fs.Arg(1))
	if err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		if err := c.Share(ctx, doc, to); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "shared %s with %s; run 'interlude sync' to send it\n", doc, to.Fingerprint())
		return nil
	})
}

func runDocWrite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("doc write", stderr, false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return fmt.Errorf("doc write takes a document id and the text to append")
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("doc cat takes one document id, got %d arguments", fs.NArg())
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
	if err := fs.Parse(args); err != nil {
		return err
	}
	return withClient(ctx, p, stderr, func(c *client.Client) error {
		if err := c.SyncOnce(ctx); err != nil {
			return err
		}
		for _, id := range c.Documents() {
			fmt.Fprintf(stdout, "%s\tsynced\n", id)
			// A refused answer to an invitation is news for the inviter,
			// who should make a new link.
			invitations, err := c.Invitations(ctx, id)
			if err != nil {
				return err
			}
			for _, inv := range invitations {
				if inv.Failed != "" {
					fmt.Fprintf(stderr, "%s\tinvitation %s refused: %s; make a new one with 'interlude doc invite'\n", id, inv.ID[:12], inv.Failed)
				}
			}
		}
		return nil
	})
}
