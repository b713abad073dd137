package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// The management API's error types, sent in X-Amzn-ErrorType: the
// aws-sdk-go-v2 client turns them into its types.GoneException and so on.
const (
	errTypeGone          = "GoneException"
	errTypeLimitExceeded = "LimitExceededException"
	errTypeForbidden     = "ForbiddenException"
	errTypeTooLarge      = "PayloadTooLargeException"
	errTypeNotFound      = "NotFoundException"
)

const connectionsPath = "/@connections"

// managementPath reports whether r is for the management API
// (/@connections/{id} or /{stage}/@connections/{id}) and returns the
// connection id, unescaped; "" if the path names none.
func (g *Gateway) managementPath(r *http.Request) (id string, ok bool) {
	p := r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(p, connectionsPath)
	if !ok {
		rest, ok = strings.CutPrefix(p, "/"+g.cfg.Stage+connectionsPath)
	}
	if !ok || (rest != "" && rest[0] != '/') {
		return "", false // /@connectionsX is some other path
	}
	rest = strings.TrimPrefix(rest, "/")
	if rest == "" || strings.Contains(rest, "/") {
		return "", true
	}
	id, err := url.PathUnescape(rest)
	if err != nil {
		return "", true
	}
	return id, true
}

// serveManagement serves POST, GET and DELETE /@connections/{id} as API
// Gateway's management API does.
func (g *Gateway) serveManagement(w http.ResponseWriter, r *http.Request, id string) {
	if id == "" {
		writeError(w, http.StatusNotFound, errTypeNotFound, "no route for "+r.Method+" "+r.URL.EscapedPath()+" (want /@connections/{connectionId})")
		return
	}
	// API Gateway serves only SigV4-signed requests for execute-api. The
	// signature cannot be checked (any credentials do locally), but a
	// client that does not sign, or signs for another service, fails
	// here as it would on AWS.
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "AWS4-HMAC-SHA256 ") || !strings.Contains(a, "/execute-api/aws4_request") {
		writeError(w, http.StatusForbidden, errTypeForbidden, "Missing Authentication Token")
		return
	}
	// Read the whole request first, as API Gateway does.
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(g.cfg.MaxMessageBytes)+1))
	if err != nil {
		return // the client went away
	}

	g.mu.Lock()
	c := g.conns[id]
	g.mu.Unlock()
	if c == nil {
		// Unknown, closed, or its $connect has not finished.
		writeError(w, http.StatusGone, errTypeGone, "")
		return
	}

	switch r.Method {
	case http.MethodPost:
		if len(body) > g.cfg.MaxMessageBytes {
			writeError(w, http.StatusRequestEntityTooLarge, errTypeTooLarge, "Message too long")
			return
		}
		m := message{typ: websocket.MessageText, data: body}
		if !utf8.Valid(body) {
			m.typ = websocket.MessageBinary // a text frame must be UTF-8
		}
		switch err := c.post(m); {
		case errors.Is(err, errGone):
			writeError(w, http.StatusGone, errTypeGone, "")
		case errors.Is(err, errQueueFull):
			writeError(w, http.StatusTooManyRequests, errTypeLimitExceeded, "Rate exceeded")
		default:
			w.WriteHeader(http.StatusOK)
		}
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(connectionInfo{
			ConnectedAt:  c.cl.connectedAt.UTC().Format(time.RFC3339Nano),
			LastActiveAt: c.lastActiveAt().UTC().Format(time.RFC3339Nano),
			Identity:     identity{SourceIP: c.cl.sourceIP, UserAgent: c.cl.userAgent},
		})
	case http.MethodDelete:
		c.end(closeDeleted, true)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowedException", r.Method+" not allowed")
	}
}

// connectionInfo is GetConnection's response body.
type connectionInfo struct {
	ConnectedAt  string   `json:"connectedAt"`
	Identity     identity `json:"identity"`
	LastActiveAt string   `json:"lastActiveAt"`
}

type identity struct {
	SourceIP  string `json:"sourceIp"`
	UserAgent string `json:"userAgent"`
}

// writeError answers as a restJson1 service does: the error type in
// X-Amzn-ErrorType, {"message": msg} in the body.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
