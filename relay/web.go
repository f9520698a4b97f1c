package relay

import (
	"io"
	"net/http"
	"strings"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.serveHealth)
	mux.HandleFunc("GET /v1/sync", s.serveSync)
	if s.cfg.Web != nil {
		mux.Handle("/", wasmContentType(http.FileServerFS(s.cfg.Web)))
	} else {
		mux.HandleFunc("/", serveWebMissing)
	}
	return mux
}

// serveHealth writes 200 "ok" while the database can be read, else 503.
func (s *Server) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.store.ping(); err != nil {
		s.log.Error("health check: Badger read failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "store unavailable\n")
		return
	}
	io.WriteString(w, "ok")
}

// wasmContentType sets application/wasm on .wasm files, the type browsers
// require for WebAssembly.instantiateStreaming, without relying on the
// host's MIME tables.
func wasmContentType(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".wasm") {
			w.Header().Set("Content-Type", "application/wasm")
		}
		next.ServeHTTP(w, r)
	})
}

const webMissingPage = `The Interlude web app was not built into this relay.

Build it with "go generate ./wasm/web" in the source tree, then rebuild
and restart the relay. Sync at /v1/sync works without it.
`

func serveWebMissing(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusNotFound)
	io.WriteString(w, webMissingPage)
}
