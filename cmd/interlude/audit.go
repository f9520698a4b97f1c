package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"interlude/relay"
)

// runRelayAudit checks a stopped relay's audit log and prints its head.
func runRelayAudit(_ context.Context, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("relay audit", flag.ContinueOnError)
	flags.SetOutput(stderr)
	dataDir := flags.String("data", "./interlude-data", "`directory` of the relay's database")
	keyFile := flags.String("encryption-key-file", "", "`file` with the database's encryption key, if it has one")
	var anchors []relay.AuditAnchor
	flags.Func("anchor", "an `anchor` SEQ:HASH printed by an earlier run or found in the relay's logs; the check fails if the log no longer matches it (repeatable)", func(s string) error {
		a, err := relay.ParseAuditAnchor(s)
		if err != nil {
			return err
		}
		anchors = append(anchors, a)
		return nil
	})
	setUsage(flags, "", "Check the hash chain of a stopped relay's audit log, and that it still matches every --anchor, then print its head as SEQ:HASH. Copy the head somewhere the relay's operator cannot rewrite, such as a ticket or a log store: a later check with it as --anchor shows whether the log was rewritten since. The relay also logs its head when it starts and stops.")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if err := checkNoArgs(flags); err != nil {
		return err
	}

	if _, err := os.Stat(*dataDir); err != nil {
		return fmt.Errorf("relay audit: --data %s: %w: pass the relay's data directory", *dataDir, err)
	}
	var key relay.EncryptionKey
	if *keyFile != "" {
		var err error
		if key, err = relay.ReadEncryptionKeyFile(*keyFile); err != nil {
			return fmt.Errorf("--encryption-key-file: %w", err)
		}
	}
	srv, err := relay.Open(relay.Config{DataDir: *dataDir, Logger: slog.New(slog.DiscardHandler), EncryptionKey: key})
	if errors.Is(err, relay.ErrEncryptionKeyMismatch) {
		return fmt.Errorf("open --data %s: %w", *dataDir, err)
	}
	if err != nil {
		return fmt.Errorf("open --data %s: %w (a running relay locks its data directory: stop it first)", *dataDir, err)
	}
	defer srv.Shutdown(context.Background())

	if err := srv.VerifyAuditAnchors(anchors...); err != nil {
		if errors.Is(err, relay.ErrAuditBroken) {
			return fmt.Errorf("the audit log of %s fails its check: %w", *dataDir, err)
		}
		return err
	}
	head, err := srv.AuditHead()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, head)
	fmt.Fprintf(stderr, "audit log intact: %d records; anchors that match: %d\n", head.Seq, len(anchors))
	return nil
}
