package client

import (
	"context"
	"errors"
	"fmt"

	"interlude/client/keyring"
	"interlude/sync/wire"
)

// A recovery phrase kept on the relay under a passphrase.
//
// The relay keeps the sealed phrase (package keyring, SealRecoveryBackup)
// in a drop box of its invitation store: a slot named by an opaque id,
// opened by TakeInvite, filled once by PostInvite and read by TakeInvite
// again. The id derives from the passphrase, so the relay learns neither
// whose backup it is nor anything of the passphrase, and a slot, once
// filled, cannot be overwritten by anyone.

// Errors of StoreRecoveryBackup and FetchRecoveryBackup.
var (
	// ErrBackupExists is returned when the relay already holds a backup
	// under the passphrase.
	ErrBackupExists = errors.New("client: recovery backup already exists on the relay under this passphrase")
	// ErrNoBackup is returned when the relay holds no backup under the
	// passphrase: it is mistyped, or the backup was made on another relay.
	ErrNoBackup = errors.New("client: no recovery backup found on the relay under this passphrase")
)

// StoreRecoveryBackup seals phrase under pass and stores it on the relay,
// so that FetchRecoveryBackup with the same passphrase returns it on any
// device. The passphrase must have at least
// keyring.MinBackupPassphraseLength characters.
func (c *Client) StoreRecoveryBackup(ctx context.Context, phrase *keyring.RecoveryPhrase, pass keyring.Passphrase) error {
	host, err := relayHost(c.relay)
	if err != nil {
		return err
	}
	blob, err := keyring.SealRecoveryBackup(phrase, pass, host)
	if err != nil {
		return err
	}
	id, err := keyring.BackupID(pass, host)
	if err != nil {
		return err
	}
	err = c.withSession(ctx, func(s *session) error {
		stored, err := s.takeSlot(ctx, id)
		if err != nil {
			return err
		}
		if len(stored) > 0 {
			return fmt.Errorf("%w: choose another passphrase", ErrBackupExists)
		}
		_, err = s.call(ctx, &wire.PostInvite{ID: id[:], Response: blob})
		var relayErr *wire.Error
		if errors.As(err, &relayErr) && relayErr.Code == wire.CodeInvitationUsed {
			return fmt.Errorf("%w: choose another passphrase", ErrBackupExists)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("client: store the recovery backup: %w", err)
	}
	c.log.Info("recovery backup stored on the relay")
	return nil
}

// FetchRecoveryBackup returns the recovery phrase that StoreRecoveryBackup
// stored on the relay under pass. A wrong passphrase returns ErrNoBackup,
// or keyring.ErrWrongPassphrase in the unlikely case that its id matches.
func (c *Client) FetchRecoveryBackup(ctx context.Context, pass keyring.Passphrase) (*keyring.RecoveryPhrase, error) {
	host, err := relayHost(c.relay)
	if err != nil {
		return nil, err
	}
	id, err := keyring.BackupID(pass, host)
	if err != nil {
		return nil, err
	}
	var blob []byte
	err = c.withSession(ctx, func(s *session) error {
		blob, err = s.takeSlot(ctx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("client: fetch the recovery backup: %w", err)
	}
	if len(blob) == 0 {
		return nil, fmt.Errorf("%w on %s: check the passphrase and the relay URL", ErrNoBackup, host)
	}
	return keyring.OpenRecoveryBackup(blob, pass, host)
}

// takeSlot opens the relay's slot id, if it is not open yet, and returns
// what it holds.
func (s *session) takeSlot(ctx context.Context, id [16]byte) ([]byte, error) {
	r, err := s.call(ctx, &wire.TakeInvite{ID: id[:]})
	if err != nil {
		return nil, err
	}
	reply, ok := r.(*wire.Invite)
	if !ok {
		return nil, fmt.Errorf("client: relay responded to TakeInvite with message type %d", r.Type())
	}
	return reply.Response, nil
}
