package client

import (
	"context"
	"time"

	"interlude/client/keyring"
	"interlude/sync/envelope"
)

// EpochKeysForTest returns every document key of doc this device holds,
// for tests that check what a removed member can decrypt.
func EpochKeysForTest(c *Client, doc envelope.DocID) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[doc]
	if !ok {
		return nil
	}
	var keys [][]byte
	for _, k := range d.meta.EpochKeys {
		if k != nil {
			keys = append(keys, append([]byte(nil), k...))
		}
	}
	return keys
}

// OutboxLenForTest returns the number of envelopes in doc's outbox.
func OutboxLenForTest(c *Client, doc envelope.DocID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.docs[doc]; ok {
		return len(d.outbox)
	}
	return -1
}

// SetRelistIntervalForTest sets how often a running session lists the
// relay's documents, and returns a function that restores it.
func SetRelistIntervalForTest(d time.Duration) func() {
	old := relistInterval
	relistInterval = d
	return func() { relistInterval = old }
}

// SecretsForTest returns every secret c holds that must never reach the
// relay or a log: its device's private keys, and for each document its
// private keys there and every document key it holds.
func SecretsForTest(c *Client) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	secrets := [][]byte{c.id.signing.Seed(), c.id.boxKey[:]}
	for _, d := range c.docs {
		secrets = append(secrets, d.self.signing.Seed(), d.self.boxKey[:])
		for _, k := range d.meta.EpochKeys {
			if k != nil {
				secrets = append(secrets, k)
			}
		}
	}
	// The roots of recovery devices' document keys.
	if linked, err := c.LinkedDevices(context.Background()); err == nil {
		for _, l := range linked {
			if l.root != nil {
				secrets = append(secrets, l.root)
			}
		}
	}
	// Every generation of the person's user key: the seed and the private
	// keys it derives.
	_ = c.store.Scan(context.Background(), []byte(personKeyPrefix), func(_, v []byte) error {
		if k, err := keyring.UnmarshalUserKey(v); err == nil {
			raw, _ := k.MarshalBinary()
			signing, box := k.PrivateKeys()
			secrets = append(secrets, raw[len(raw)-keyring.SeedSize:], signing, box[:])
		}
		return nil
	})
	for i, s := range secrets {
		secrets[i] = append([]byte(nil), s...)
	}
	return secrets
}

// InvitedForTest reports whether c keeps the mark of an invitation to
// doc that it responded to.
func InvitedForTest(c *Client, doc envelope.DocID) bool {
	invited, err := c.invitedTo(context.Background(), doc)
	return err == nil && invited
}
