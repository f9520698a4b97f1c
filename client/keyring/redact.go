package keyring

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Every type that holds a secret prints as "[redacted]" and, where it has
// one, a public fingerprint, through fmt with any verb, through slog and
// through encoding/json. The methods have value receivers so that a copy of
// a value redacts too.

const redacted = "[redacted]"

func writeRedacted(f fmt.State, s string) { io.WriteString(f, s) }

// String returns "[redacted]" and the device's public fingerprint.
func (d Device) String() string { return redacted + " device " + d.public.Fingerprint() }

// GoString returns what String returns.
func (d Device) GoString() string { return d.String() }

// Format writes what String returns, for every verb.
func (d Device) Format(f fmt.State, _ rune) { writeRedacted(f, d.String()) }

// LogValue returns what String returns.
func (d Device) LogValue() slog.Value { return slog.StringValue(d.String()) }

// MarshalJSON returns what String returns, as a JSON string, so that a
// struct holding a Device encodes no secret either.
func (d Device) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// String returns "[redacted]", the generation and a fingerprint of the
// public keys.
func (k UserKey) String() string {
	pub := PublicKeys{Sign: k.public.Sign, Box: k.public.Box}
	return fmt.Sprintf("%s user key generation %d %s", redacted, k.public.Generation, pub.Fingerprint())
}

// GoString returns what String returns.
func (k UserKey) GoString() string { return k.String() }

// Format writes what String returns, for every verb.
func (k UserKey) Format(f fmt.State, _ rune) { writeRedacted(f, k.String()) }

// LogValue returns what String returns.
func (k UserKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON returns what String returns, as a JSON string, so that a
// struct holding a UserKey encodes no secret either.
func (k UserKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// String returns "[redacted]", the document id and a fingerprint of the
// public key.
func (k DocumentKey) String() string {
	var pub PublicKeys
	copy(pub.Sign[:], k.Public())
	return fmt.Sprintf("%s document key %x %s", redacted, k.doc, pub.Fingerprint())
}

// GoString returns what String returns.
func (k DocumentKey) GoString() string { return k.String() }

// Format writes what String returns, for every verb.
func (k DocumentKey) Format(f fmt.State, _ rune) { writeRedacted(f, k.String()) }

// LogValue returns what String returns.
func (k DocumentKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON returns what String returns, as a JSON string, so that a
// struct holding a DocumentKey encodes no secret either.
func (k DocumentKey) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// String returns "[redacted]" and the recovery device's fingerprint.
func (p RecoveryPhrase) String() string {
	return redacted + " recovery phrase " + p.public.Fingerprint()
}

// GoString returns what String returns.
func (p RecoveryPhrase) GoString() string { return p.String() }

// Format writes what String returns, for every verb.
func (p RecoveryPhrase) Format(f fmt.State, _ rune) { writeRedacted(f, p.String()) }

// LogValue returns what String returns.
func (p RecoveryPhrase) LogValue() slog.Value { return slog.StringValue(p.String()) }

// MarshalJSON returns what String returns, as a JSON string, so that a
// struct holding a RecoveryPhrase encodes no secret either.
func (p RecoveryPhrase) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// String returns "[redacted]" only: any hash of a passphrase would help
// whoever reads the log to guess it.
func (p Passphrase) String() string { return redacted + " passphrase" }

// GoString returns what String returns.
func (p Passphrase) GoString() string { return p.String() }

// Format writes what String returns, for every verb.
func (p Passphrase) Format(f fmt.State, _ rune) { writeRedacted(f, p.String()) }

// LogValue returns what String returns.
func (p Passphrase) LogValue() slog.Value { return slog.StringValue(p.String()) }

// MarshalJSON returns what String returns, as a JSON string, so that a
// struct holding a Passphrase encodes no secret either.
func (p Passphrase) MarshalJSON() ([]byte, error) { return json.Marshal(p.String()) }

// String returns "[redacted]" and the new device's fingerprint.
func (r LinkRequest) String() string {
	return redacted + " link request from " + r.Device.Fingerprint()
}

// GoString returns what String returns.
func (r LinkRequest) GoString() string { return r.String() }

// Format writes what String returns, for every verb.
func (r LinkRequest) Format(f fmt.State, _ rune) { writeRedacted(f, r.String()) }

// LogValue returns what String returns.
func (r LinkRequest) LogValue() slog.Value { return slog.StringValue(r.String()) }

// MarshalJSON returns what String returns, as a JSON string, so that a
// struct holding a LinkRequest encodes no secret either.
func (r LinkRequest) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

// String returns "[redacted]", the start of the invitation's ID and the
// inviter's fingerprint.
func (inv Invitation) String() string {
	return fmt.Sprintf("%s invitation %x from %s", redacted, inv.idPrefix(), inv.Inviter.Fingerprint())
}

// GoString returns what String returns.
func (inv Invitation) GoString() string { return inv.String() }

// Format writes what String returns, for every verb.
func (inv Invitation) Format(f fmt.State, _ rune) { writeRedacted(f, inv.String()) }

// LogValue returns what String returns.
func (inv Invitation) LogValue() slog.Value { return slog.StringValue(inv.String()) }

// MarshalJSON returns what String returns, as a JSON string, so that a
// struct holding a Invitation encodes no secret either.
func (inv Invitation) MarshalJSON() ([]byte, error) { return json.Marshal(inv.String()) }
