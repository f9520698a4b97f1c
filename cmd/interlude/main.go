// Command interlude runs an Interlude relay, scripts a client, and
// replays benchmarks.
//
// Usage:
//
//	interlude relay [--listen ADDR] [--data DIR]
//	interlude id new|show|person [--profile DIR]
//	interlude doc new|list|share|write|cat [--profile DIR] ...
//	interlude doc invite|join [--profile DIR] [--relay URL] DOC|LINK
//	interlude doc remove|members [--profile DIR] ...
//	interlude sync [--profile DIR] [--relay URL]
//	interlude bench trace [--batch N] FILE
//	interlude bench crdt FILE
//
// Run a subcommand with -h for its arguments and flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"interlude/wasm/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp), errors.As(err, new(*flagError)):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "interlude:", err)
		os.Exit(1)
	}
}

const usage = `usage: interlude COMMAND [flags] [arguments]

Commands:
  relay            serve the relay and the web app
  relay audit      check a stopped relay's audit log and print its head
  id new           make this device's identity in a profile folder
  id show          print this device's public id, to give to others
  id encrypt       encrypt an existing profile under a passphrase
  id person        print your person id, which shares with all your devices
  doc new          make a new journal document
  doc list         list the documents on this device
  doc share        share a document with a person id or a device's public id
  doc invite       make a one-time invitation link to a document
  doc join         answer an invitation link and print the comparison code
  doc remove       remove a member and rotate the document key on next sync
  doc members      list a document's members, membership code and invitations
  doc write        append text to a document's journal
  doc cat          print a document's journal text
  device link      link another device of yours to your documents
  device list      list the devices linked to this one
  device remove    remove a lost device from your documents
  device recovery  make a recovery phrase that can restore your documents
  device recover   link this device to your documents with a recovery phrase
  sync             accept shared documents, push local edits, pull others'
  bench trace      replay an editing trace through a relay on loopback
  bench crdt       replay an editing trace into one CRDT replica, save and load

Run 'interlude COMMAND -h' for the arguments and flags of a command.
`

// Run runs the command line args, writing output to stdout and messages to
// stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return flag.ErrHelp
	}
	sub := ""
	if len(args) > 1 {
		sub = args[1]
	}
	switch {
	case args[0] == "relay" && sub == "audit":
		return runRelayAudit(ctx, args[2:], stdout, stderr)
	case args[0] == "relay":
		app := web.FS()
		if _, err := fs.Stat(app, web.WASMFile); err != nil {
			fmt.Fprintf(stderr, "interlude: warning: this binary was built without the web app (%s is missing), so the page will not start: run 'go generate ./wasm/web' and build again\n", web.WASMFile)
		}
		return runRelay(ctx, args[1:], stdout, stderr, app)
	case args[0] == "id" && sub == "new":
		return runIDNew(ctx, args[2:], stdout, stderr)
	case args[0] == "id" && sub == "encrypt":
		return runIDEncrypt(ctx, args[2:], stdout, stderr)
	case args[0] == "id" && sub == "show":
		return runIDShow(ctx, args[2:], stdout, stderr)
	case args[0] == "id" && sub == "person":
		return runIDPerson(ctx, args[2:], stdout, stderr)
	case args[0] == "doc" && sub == "new":
		return runDocNew(ctx, args[2:], stdout, stderr)
	case args[0] == "doc" && sub == "list":
		return runDocList(ctx, args[2:], stdout, stderr)
	case args[0] == "doc" && sub == "share":
		return runDocShare(ctx, args[2:], stdout, stderr)
	case args[0] == "doc" && sub == "invite":
		return runDocInvite(ctx, args[2:], stdout, stderr)
	case args[0] == "doc" && sub == "join":
		return runDocJoin(ctx, args[2:], stdout, stderr)
	case args[0] == "doc" && sub == "remove":
		return runDocRemove(ctx, args[2:], stdout, stderr)
	case args[0] == "doc" && sub == "members":
		return runDocMembers(ctx, args[2:], stdout, stderr)
	case args[0] == "doc" && sub == "write":
		return runDocWrite(ctx, args[2:], stdout, stderr)
	case args[0] == "doc" && sub == "cat":
		return runDocCat(ctx, args[2:], stdout, stderr)
	case args[0] == "device" && sub == "link":
		return runDeviceLink(ctx, args[2:], stdout, stderr)
	case args[0] == "device" && sub == "list":
		return runDeviceList(ctx, args[2:], stdout, stderr)
	case args[0] == "device" && sub == "remove":
		return runDeviceRemove(ctx, args[2:], stdout, stderr)
	case args[0] == "device" && sub == "recovery":
		return runDeviceRecovery(ctx, args[2:], stdout, stderr)
	case args[0] == "device" && sub == "recover":
		return runDeviceRecover(ctx, args[2:], stdout, stderr)
	case args[0] == "sync":
		return runSync(ctx, args[1:], stdout, stderr)
	case args[0] == "bench" && sub == "trace":
		return runBenchTrace(ctx, args[2:], stdout, stderr)
	case args[0] == "bench" && sub == "crdt":
		return runBenchCRDT(ctx, args[2:], stdout, stderr)
	case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	if len(args) == 1 && slices.Contains([]string{"id", "doc", "device", "bench"}, args[0]) {
		return fmt.Errorf("%q needs a command after it, such as %q: see the list above", args[0], commandsOf(args[0])[0])
	}
	return fmt.Errorf("unknown command %q: see the list above", joinFirst(args, 2))
}

// setUsage makes the -h output of a subcommand's flag set start with a
// usage line that names its positional arguments, then describe the
// command and list the flags. args is "" for a command that takes none.
func setUsage(fs *flag.FlagSet, args, description string) {
	fs.Usage = func() {
		line := "usage: interlude " + fs.Name() + " [flags]"
		if args != "" {
			line += " " + args
		}
		fmt.Fprintf(fs.Output(), "%s\n\n%s\n\nFlags:\n", line, description)
		fs.PrintDefaults()
	}
}

// flagError is an invalid flag, which the flag package has already
// reported with the command's usage, so main prints nothing more.
type flagError struct{ err error }

func (e *flagError) Error() string { return e.err.Error() }
func (e *flagError) Unwrap() error { return e.err }

// parseFlags parses args into fs. A flag of fs given after the first
// argument, which the flag package would take as an argument, returns an
// error that tells the person to move it.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &flagError{err}
	}
	rest := fs.Args()
	if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
		// "--" ended the flags: what follows is arguments, dashes or not.
		return nil
	}
	for _, a := range rest {
		if a == "--" {
			break
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && fs.Lookup(name) != nil {
			return fmt.Errorf("flag %s comes after the arguments: put flags first, as in 'interlude %s %s ...'", a, fs.Name(), a)
		}
	}
	return nil
}

// checkNoArgs rejects positional arguments given to a command that takes
// none, which would otherwise be ignored without a word.
func checkNoArgs(fs *flag.FlagSet) error {
	if fs.NArg() != 0 {
		return fmt.Errorf("%s takes no arguments, got %q: see 'interlude %s -h'", fs.Name(), fs.Args(), fs.Name())
	}
	return nil
}

// argCount names n arguments, "1 argument" or "n arguments", for the
// messages of commands given the wrong number.
func argCount(n int) string {
	if n == 1 {
		return "1 argument"
	}
	return fmt.Sprintf("%d arguments", n)
}

// commandsOf returns the commands of the usage text that start with
// group, such as "doc new" for "doc".
func commandsOf(group string) []string {
	var out []string
	for _, line := range strings.Split(usage, "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == group {
			out = append(out, fields[0]+" "+fields[1])
		}
	}
	return out
}

func joinFirst(args []string, n int) string {
	s := ""
	for i, a := range args {
		if i == n {
			break
		}
		if i > 0 {
			s += " "
		}
		s += a
	}
	return s
}
