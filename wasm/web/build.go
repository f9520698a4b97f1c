//go:build !js

package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// mainPackage is the import path of the WebAssembly client's main package.
const mainPackage = "interlude/wasm/cmd/interlude-web"

// Build writes the whole app into outDir: the page files embedded in this
// package and a freshly built interlude.wasm and wasm_exec.js. It runs the
// go command, so the working directory must be inside the interlude module.
func Build(ctx context.Context, outDir string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("web: create output folder %s: %w", outDir, err)
	}
	err := fs.WalkDir(FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(outDir, path), 0o755)
		}
		// Generated files embedded from an earlier go generate may be
		// stale; BuildWASM writes fresh ones below.
		if path == WASMFile || path == LoaderFile {
			return nil
		}
		b, err := fs.ReadFile(FS(), path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(outDir, path), b, 0o644)
	})
	if err != nil {
		return fmt.Errorf("web: copy page files into %s: %w", outDir, err)
	}
	return BuildWASM(ctx, outDir)
}

// BuildWASM compiles the WebAssembly client into outDir/interlude.wasm and
// copies the go toolchain's wasm_exec.js beside it. The loader must come
// from the same Go version as the compiler, which is why it is copied and
// not kept in version control.
func BuildWASM(ctx context.Context, outDir string) error {
	goBin, err := goCommand()
	if err != nil {
		return err
	}

	// -trimpath keeps the build folder's path out of the binary; -s -w
	// drop the symbol table and DWARF data, which the browser never uses;
	// -buildvcs=false lets the build run in a tree without commits.
	out := filepath.Join(outDir, WASMFile)
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, mainPackage)
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("web: build %s for js/wasm: %w\n%s", mainPackage, err, stderr.String())
	}

	return CopyLoader(ctx, outDir)
}

// CopyLoader copies wasm_exec.js, Go's loader for WebAssembly programs,
// from the go command's toolchain into outDir.
func CopyLoader(ctx context.Context, outDir string) error {
	goBin, err := goCommand()
	if err != nil {
		return err
	}
	goroot, err := exec.CommandContext(ctx, goBin, "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("web: run %s env GOROOT: %w", goBin, err)
	}
	// Go 1.24 moved the loader from misc/wasm to lib/wasm.
	loader := filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", LoaderFile)
	b, err := os.ReadFile(loader)
	if err != nil {
		return fmt.Errorf("web: read the Go WebAssembly loader: %w (this app needs Go 1.24 or newer)", err)
	}
	if err := os.WriteFile(filepath.Join(outDir, LoaderFile), b, 0o644); err != nil {
		return fmt.Errorf("web: write %s: %w", LoaderFile, err)
	}
	return nil
}

// goCommand returns the go binary of the toolchain that built this
// program, or failing that the one on PATH. runtime.GOROOT is deprecated
// because that toolchain need not be the one in use. Here it is exactly
// the one wanted, since its compiler built the caller (a test binary, say).
// It is empty in a binary built with -trimpath, hence the fallback.
func goCommand() (string, error) {
	bin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	bin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("web: the go command was not found in GOROOT or on PATH: install Go 1.24 or newer")
	}
	return bin, nil
}
