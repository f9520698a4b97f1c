package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

// TestSubcommandHelp runs each client subcommand with -h and checks that
// the usage line names its positional arguments and that the flags follow.
func TestSubcommandHelp(t *testing.T) {
	cases := []struct {
		command []string
		usage   string
		flags   []string
	}{
		{[]string{"id", "new"}, "usage: interlude id new [flags]", []string{"-profile", "-passphrase-file"}},
		{[]string{"id", "show"}, "usage: interlude id show [flags]", []string{"-profile", "-passphrase-file"}},
		{[]string{"id", "encrypt"}, "usage: interlude id encrypt [flags]", []string{"-profile", "-passphrase-file"}},
		{[]string{"id", "person"}, "usage: interlude id person [flags]", []string{"-profile", "-passphrase-file"}},
		{[]string{"doc", "new"}, "usage: interlude doc new [flags]", []string{"-profile", "-passphrase-file"}},
		{[]string{"doc", "list"}, "usage: interlude doc list [flags]", []string{"-profile", "-passphrase-file"}},
		{[]string{"doc", "share"}, "usage: interlude doc share [flags] DOC PERSON-ID|PUBLIC-ID", []string{"-profile", "-passphrase-file"}},
		{[]string{"doc", "invite"}, "usage: interlude doc invite [flags] DOC", []string{"-profile", "-relay"}},
		{[]string{"doc", "join"}, "usage: interlude doc join [flags] LINK", []string{"-profile", "-relay"}},
		{[]string{"doc", "remove"}, "usage: interlude doc remove [flags] DOC PUBLIC-ID", []string{"-profile", "-passphrase-file"}},
		{[]string{"doc", "members"}, "usage: interlude doc members [flags] DOC", []string{"-profile", "-passphrase-file"}},
		{[]string{"doc", "write"}, "usage: interlude doc write [flags] DOC TEXT...", []string{"-profile", "-passphrase-file"}},
		{[]string{"doc", "cat"}, "usage: interlude doc cat [flags] DOC", []string{"-profile", "-passphrase-file"}},
		{[]string{"sync"}, "usage: interlude sync [flags]", []string{"-profile", "-relay", "-v"}},
		{[]string{"device", "link"}, "usage: interlude device link [flags] PUBLIC-ID", []string{"-profile", "-relay", "-fingerprint"}},
		{[]string{"device", "list"}, "usage: interlude device list [flags]", []string{"-profile", "-passphrase-file"}},
		{[]string{"device", "remove"}, "usage: interlude device remove [flags] DEVICE", []string{"-profile", "-relay"}},
		{[]string{"device", "recovery"}, "usage: interlude device recovery [flags]", []string{"-profile", "-relay"}},
		{[]string{"device", "recover"}, "usage: interlude device recover [flags]", []string{"-profile", "-relay", "-phrase-file"}},
		{[]string{"bench", "trace"}, "usage: interlude bench trace [flags] FILE", []string{"-batch", "-timeout"}},
		{[]string{"relay", "audit"}, "usage: interlude relay audit [flags]", []string{"-data", "-anchor", "-encryption-key-file"}},
		{[]string{"bench", "crdt"}, "usage: interlude bench crdt [flags] FILE", nil},
	}
	for _, c := range cases {
		name := strings.Join(c.command, " ")
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := Run(context.Background(), append(c.command, "-h"), &stdout, &stderr)
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("err = %v, want flag.ErrHelp", err)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want the help on stderr only", stdout.String())
			}
			help := stderr.String()
			first, rest, _ := strings.Cut(help, "\n")
			if first != c.usage {
				t.Errorf("first line = %q, want %q", first, c.usage)
			}
			_, flagList, found := strings.Cut(rest, "\nFlags:\n")
			if !found {
				t.Fatalf("help has no Flags: section:\n%s", help)
			}
			for _, f := range c.flags {
				if !listsFlag(flagList, f) {
					t.Errorf("flags section lacks %s:\n%s", f, flagList)
				}
			}
		})
	}
}

// listsFlag reports whether the output of flag.PrintDefaults lists flag,
// which starts a line after two spaces and is followed by a space before
// its value name or by a tab before its help.
func listsFlag(defaults, flag string) bool {
	for _, line := range strings.Split(defaults, "\n") {
		rest, ok := strings.CutPrefix(line, "  "+flag)
		if ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return true
		}
	}
	return false
}

// TestCommandTakesNoArguments checks that a command without positional
// arguments rejects them instead of ignoring them.
func TestCommandTakesNoArguments(t *testing.T) {
	profile := t.TempDir()
	for _, command := range [][]string{{"id", "new"}, {"id", "show"}, {"doc", "new"}, {"doc", "list"}, {"sync"}} {
		args := append(append([]string{}, command...), "--profile", profile, "extra")
		err := runErr(args...)
		if err == nil || !strings.Contains(err.Error(), "takes no arguments") {
			t.Errorf("interlude %s: err = %v, want it to say the command takes no arguments", strings.Join(args, " "), err)
		}
	}
}
