package keyring

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// secretForms returns the ways a secret could show up in a log: raw, hex,
// base64, base32, and fmt's decimal and Go-syntax forms of a byte slice.
func secretForms(b []byte) []string {
	forms := []string{
		string(b),
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b),
		base64.RawURLEncoding.EncodeToString(b),
		base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b),
		strings.Trim(fmt.Sprint(b), "[]"),
		strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%#v", b), "[]byte{"), "}"),
	}
	// A log may cut a long value, so the first 12 bytes alone must not
	// show up either.
	if len(b) > 12 {
		forms = append(forms, secretForms(b[:12])...)
	}
	return forms
}

func TestSecretsAreRedacted(t *testing.T) {
	dev := newTestDevice(t)
	key, err := NewUserKey(1)
	if err != nil {
		t.Fatal(err)
	}
	docKey, err := key.DocumentKey([16]byte{4, 2})
	if err != nil {
		t.Fatal(err)
	}
	phrase, err := NewRecoveryPhrase()
	if err != nil {
		t.Fatal(err)
	}
	pass := NewPassphrase("correct horse battery staple")
	req, err := NewLinkRequest(dev)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := NewInvitation(dev.Public(), [16]byte{})
	if err != nil {
		t.Fatal(err)
	}
	link, _ := inv.Link("interlude.example")

	cases := []struct {
		name    string
		value   any
		secrets [][]byte
	}{
		{"Device", dev, [][]byte{dev.signing, dev.signing.Seed(), dev.box[:]}},
		{"UserKey", key, [][]byte{key.seed[:], key.signing, key.signing.Seed(), key.box[:]}},
		{"DocumentKey", docKey, [][]byte{docKey.signing, docKey.signing.Seed()}},
		{"RecoveryPhrase", phrase, [][]byte{phrase.entropy[:], []byte(phrase.Words())}},
		{"Passphrase", pass, [][]byte{pass.b}},
		{"LinkRequest", req, [][]byte{req.secret[:], []byte(req.Code())}},
		{"Invitation", inv, [][]byte{inv.secret[:], []byte(link)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, out := range renderings(c.value) {
				if !strings.Contains(out.text, redacted) {
					t.Errorf("%s: %q does not say %q", out.how, out.text, redacted)
				}
				for _, s := range c.secrets {
					for _, form := range secretForms(s) {
						if strings.Contains(out.text, form) {
							t.Errorf("%s: output %q contains the secret as %q", out.how, out.text, form)
						}
					}
				}
			}
		})
	}
}

type rendering struct{ how, text string }

// renderings prints v, its dereferenced copy and a struct holding it
// through fmt with several verbs and through slog's handlers.
func renderings(v any) []rendering {
	values := map[string]any{"pointer": v}
	switch x := v.(type) {
	case *Device:
		values["value"] = *x
	case *UserKey:
		values["value"] = *x
	case *DocumentKey:
		values["value"] = *x
	case *RecoveryPhrase:
		values["value"] = *x
	case *LinkRequest:
		values["value"] = *x
	case *Invitation:
		values["value"] = *x
	}
	values["field"] = struct{ Secret any }{v}

	var out []rendering
	for form, x := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			out = append(out, rendering{form + " " + verb, fmt.Sprintf(verb, x)})
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("m", "k", x, slog.Group("g", "k", x))
		out = append(out, rendering{form + " slog JSON", buf.String()})
		buf.Reset()
		slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "k", x, slog.Any("a", x))
		out = append(out, rendering{form + " slog text", buf.String()})
	}
	return out
}
