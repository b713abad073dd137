// Package web is the emulator's debugger page: a browser client for the
// WebSocket API that lists the application's bindings, sends requests, and
// shows replies and pushes as they arrive. It is built on the TypeScript
// client (clients/ts), whose compiled modules static/client holds: `make
// web-client` writes them (tsconfig.client.json), and
// TestClientBundle_UpToDate checks they are current.
//
// It is a development tool, as channels-api's was (served only with DEBUG):
// only the local emulator mounts it, never the cloud. The page opens its
// WebSocket at the origin that served it, at "/", so it is the gateway's
// fallback: every request at the gateway's address that is neither a
// WebSocket upgrade nor the management API.
//
//	gateway.New(gateway.Config{..., Fallback: web.Handler(describe)})
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/wsbind/wsbind/internal/emulated/asyncapi"
)

//go:embed static
var static embed.FS

// Handler serves the debugger: the page at "/", its script and style sheet,
// at "/client/*.js" the modules of the TypeScript client the script imports,
// at "/bindings.json" the bindings document, as the route guest describes
// itself (abi.ExportDescribe), and at "/asyncapi.json" the AsyncAPI
// document made of it, whose emulator server is the host the request
// named. Other paths are 404 and methods other than GET and HEAD 405.
func Handler(bindings []byte) http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic("web: " + err.Error()) // the embedded tree is fixed at build time
	}
	assets := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
		switch r.URL.Path {
		case "/", "/debugger.js", "/debugger.css":
			assets.ServeHTTP(w, r)
		case "/bindings.json":
			h.Set("Content-Type", "application/json")
			w.Write(bindings)
		case "/asyncapi.json":
			doc, err := asyncapi.FromDescribe(bindings, asyncapi.Options{Emulator: r.Host})
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			h.Set("Content-Type", "application/json")
			w.Write(doc)
		default:
			if isClientModule(r.URL.Path) {
				assets.ServeHTTP(w, r)
				return
			}
			http.NotFound(w, r)
		}
	})
}

// isClientModule reports whether p names a module of the TypeScript client,
// /client/NAME.js, and nothing else there (no listing of the directory).
func isClientModule(p string) bool {
	name, ok := strings.CutPrefix(p, "/client/")
	return ok && path.Clean(p) == p && path.Ext(name) == ".js" && !strings.Contains(name, "/")
}

// csp lets the page load only its own files and talk only to its own
// origin ('self' covers ws: and wss: of the same host).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
