package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"interlude/client"
	"interlude/client/badgerstore"
	"interlude/client/securestore"
)

// Folders of a profile's store while it is converted. The new store is
// complete before the old one moves aside, so a conversion cut short
// leaves either the old store as it was or a complete new one, which
// finishStoreConversion puts in place.
const (
	storeDir    = "store"
	storeNewDir = "store.encrypting"
	storeOldDir = "store.plain"
)

// runIDEncrypt encrypts an existing profile under a passphrase.
func runIDEncrypt(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, p := newClientFlags("id encrypt", stderr, false)
	setUsage(fs, "", "Encrypt this profile's store and identity file under the passphrase in --passphrase-file (required). Use it on a profile made without a passphrase; every later command then needs the same --passphrase-file.")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := checkNoArgs(fs); err != nil {
		return err
	}
	if p.passphraseFile == "" {
		return errors.New("id encrypt needs --passphrase-file FILE: write the new passphrase as the file's first line")
	}
	pass, err := readPassphraseFile(p.passphraseFile)
	if err != nil {
		return err
	}
	if err := finishStoreConversion(p.profile); err != nil {
		return err
	}
	if _, err := client.ReadIdentityFile(p.profile); err != nil {
		if errors.Is(err, client.ErrIdentityEncrypted) {
			return errors.New("this profile is already encrypted: pass --passphrase-file to other commands instead")
		}
		return err
	}

	dir := filepath.Join(p.profile, storeDir)
	plain, err := badgerstore.Open(dir)
	if err != nil {
		return err
	}
	if _, err := unlockStore(ctx, plain, nil, ""); err != nil {
		plain.Close()
		return err
	}
	n, err := copyIntoEncryptedStore(ctx, plain, filepath.Join(p.profile, storeNewDir), securestore.PassphraseUnlocker{Passphrase: *pass})
	plain.Close()
	if err != nil {
		os.RemoveAll(filepath.Join(p.profile, storeNewDir))
		return err
	}
	if err := os.Rename(dir, filepath.Join(p.profile, storeOldDir)); err != nil {
		return fmt.Errorf("move the unencrypted store aside: %w", err)
	}
	if err := finishStoreConversion(p.profile); err != nil {
		return err
	}
	if err := client.EncryptIdentityFile(p.profile, *pass); err != nil {
		return fmt.Errorf("encrypt the identity file: %w", err)
	}
	fmt.Fprintf(stdout, "encrypted this profile: %d records and the identity file\n", n)
	fmt.Fprintln(stderr, "pass the same --passphrase-file to every command from now on. The old unencrypted copy was deleted, but a disk may keep its blocks: on a shared machine, also encrypt the disk")
	return nil
}

// copyIntoEncryptedStore copies every record of plain into a new store at
// dir, encrypted under unlock, and returns how many it copied.
func copyIntoEncryptedStore(ctx context.Context, plain client.Store, dir string, unlock securestore.Unlocker) (int, error) {
	if err := os.RemoveAll(dir); err != nil {
		return 0, err
	}
	raw, err := badgerstore.Open(dir)
	if err != nil {
		return 0, err
	}
	enc, err := securestore.Open(ctx, raw, unlock, securestore.Options{})
	if err != nil {
		raw.Close()
		return 0, err
	}
	defer enc.Close()

	const batchSize = 256
	var b client.Batch
	n := 0
	flush := func() error {
		if len(b.Ops) == 0 {
			return nil
		}
		err := enc.Write(ctx, &b)
		b = client.Batch{}
		return err
	}
	err = plain.Scan(ctx, nil, func(key, value []byte) error {
		b.Put(append([]byte(nil), key...), append([]byte(nil), value...))
		n++
		if len(b.Ops) == batchSize {
			return flush()
		}
		return nil
	})

	if err == nil {
		err = flush()
	}
	if err != nil {
		return 0, fmt.Errorf("copy the store into its encrypted copy: %w", err)
	}
	return n, nil
}

// finishStoreConversion completes a conversion that stopped after the new
// store was complete: it puts the new store in place and deletes the old
// unencrypted one. It does nothing for a profile not being converted.
func finishStoreConversion(profile string) error {
	dir := filepath.Join(profile, storeDir)
	newDir := filepath.Join(profile, storeNewDir)
	oldDir := filepath.Join(profile, storeOldDir)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(newDir); err == nil {
			if err := os.Rename(newDir, dir); err != nil {
				return fmt.Errorf("put the encrypted store in place: %w", err)
			}
		}
	}
	if _, err := os.Stat(oldDir); err == nil {
		if _, err := os.Stat(dir); err == nil {
			if err := os.RemoveAll(oldDir); err != nil {
				return fmt.Errorf("delete the unencrypted copy of the store in %s: %w", oldDir, err)
			}
		}
	}
	return nil
}
