// Package web is the emulator's debugger page: a browser client for the
// WebSocket API that lists the application's bindings, sends frames, and
// shows replies and pushes as they arrive.
//
// It is a development tool, as channels-api's was (served only with DEBUG):
// only the local emulator mounts it, never the cloud. The page opens its
// WebSocket at the origin that served it, at "/", so it is the gateway's
// fallback: every request at the gateway's address that is neither a
// WebSocket upgrade nor the management API.
//
//	gateway.New(gateway.Config{..., Fallback: web.Handler(reg)})
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"

	"github.com/wsbind/wsbind/resource"
)

//go:embed static
var static embed.FS

// Bindings is the document GET /bindings.json serves: what the page offers
// in its stream and action selects.
type Bindings struct {
	Streams []Stream `json:"streams"`
}

// Stream is one binding: its stream, model label and actions.
type Stream struct {
	Stream  string   `json:"stream"`
	Model   string   `json:"model"`
	Actions []Action `json:"actions"`
}

// Action is one action a binding offers. Detail actions take a pk; custom
// ones are the binding's own (channels-api's @detail_action and
// @list_action).
type Action struct {
	Name   string `json:"name"`
	Detail bool   `json:"detail"`
	Custom bool   `json:"custom"`
}

// Describe lists the registry's bindings, streams in order and each one's
// actions as the binding declares them (built-ins first).
func Describe(reg *resource.Registry) Bindings {
	out := Bindings{Streams: []Stream{}}
	for _, name := range reg.Streams() {
		h := reg.Lookup(name)
		s := Stream{Stream: h.Stream(), Model: h.Model(), Actions: []Action{}}
		for _, a := range h.Actions() {
			s.Actions = append(s.Actions, Action{Name: a.Name, Detail: a.Detail, Custom: a.Custom})
		}
		out.Streams = append(out.Streams, s)
	}
	return out
}

// Handler serves the debugger: the page at "/", its script and style sheet,
// and the registry's bindings at "/bindings.json". Other paths are 404 and
// methods other than GET and HEAD 405. The bindings are read from the
// registry on every request.
func Handler(reg *resource.Registry) http.Handler {
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
			body, err := json.Marshal(Describe(reg))
			if err != nil {
				http.Error(w, "internal server error", http.StatusInternalServerError)
				return
			}
			h.Set("Content-Type", "application/json")
			w.Write(append(body, '\n'))
		default:
			http.NotFound(w, r)
		}
	})
}

// csp lets the page load only its own files and talk only to its own
// origin ('self' covers ws: and wss: of the same host).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
