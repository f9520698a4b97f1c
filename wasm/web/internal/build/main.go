//go:build !js

// Command build compiles the WebAssembly client and copies Go's
// wasm_exec.js beside it. go generate runs it in wasm/web, with go run,
// so the step needs no shell.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"interlude/wasm/web"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	flags := flag.NewFlagSet("build", flag.ContinueOnError)
	out := flags.String("out", "static", "folder to write interlude.wasm and wasm_exec.js into")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("build: unexpected arguments %q: the only option is -out", flags.Args())
	}
	return web.BuildWASM(ctx, *out)
}
