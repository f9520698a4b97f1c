package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"interlude/relay"
)

// relayShutdownTimeout bounds how long the relay waits for open
// connections to close when it stops.
const relayShutdownTimeout = 10 * time.Second

// runRelay runs the relay until ctx is cancelled. web is the built web app,
// or nil when it was not built.
func runRelay(ctx context.Context, args []string, stdout, stderr io.Writer, web fs.FS) error {
	flags := flag.NewFlagSet("relay", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintf(stderr, "usage: interlude relay [--listen host:port] [--data dir] [--encryption-key-file file] [--membership-cache number]\n\n")
		fmt.Fprintf(stderr, "Run a relay that stores and forwards encrypted updates; it cannot read them.\n\n")
		flags.PrintDefaults()
	}
	listen := flags.String("listen", "127.0.0.1:8080", "TCP `address` to serve HTTP and WebSocket sync on")
	dataDir := flags.String("data", "./interlude-data", "`directory` of the relay's database; created if missing")
	keyFile := flags.String("encryption-key-file", "", "`file` with the key that encrypts the database at rest: 32 raw bytes or 64 hex digits (for example from 'openssl rand -hex 32'); a directory created with a key opens only with it")
	cacheSize := flags.Int("membership-cache", relay.DefaultMembershipCacheSize, "maximum `number` of documents whose membership state the relay keeps in memory; the relay rebuilds others from the database when they are used")
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("relay: unexpected argument %q: the relay takes only --listen, --data, --encryption-key-file and --membership-cache", flags.Arg(0))
	}
	if *cacheSize < 1 {
		return fmt.Errorf("relay: --membership-cache %d is not a positive number of documents: pass at least 1, or leave it out for the default of %d", *cacheSize, relay.DefaultMembershipCacheSize)
	}
	var key relay.EncryptionKey
	if *keyFile != "" {
		var err error
		if key, err = relay.ReadEncryptionKeyFile(*keyFile); err != nil {
			return fmt.Errorf("--encryption-key-file: %w", err)
		}
	}

	logger := slog.New(slog.NewJSONHandler(stderr, nil))

	ln, err := net.Listen("tcp", *listen)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("relay: listen on %s: the port is already in use: stop the other program or pass another --listen address: %w", *listen, err)
	}
	if err != nil {
		return fmt.Errorf("relay: listen on %s: %w (check the --listen address)", *listen, err)
	}

	srv, err := relay.Open(relay.Config{DataDir: *dataDir, Logger: logger, Web: web, EncryptionKey: key, MembershipCacheSize: *cacheSize})
	if errors.Is(err, relay.ErrEncryptionKeyMismatch) {
		ln.Close()
		return fmt.Errorf("open --data %s: %w", *dataDir, err)
	}
	if err != nil {
		ln.Close()
		return fmt.Errorf("open --data %s: %w (check that the directory is writable and that no other relay is using it, or pass another --data)", *dataDir, err)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "interlude relay serving http://%s (sync at ws://%s/v1/sync)\n", ln.Addr(), ln.Addr())

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("relay: serve on %s: %w", ln.Addr(), err)
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), relayShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && runErr == nil {
		runErr = fmt.Errorf("relay: shut down: %w", err)
	}
	if runErr == nil {
		if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("relay: serve on %s: %w", ln.Addr(), err)
		}
	}
	return runErr
}
