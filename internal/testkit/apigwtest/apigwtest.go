// Package apigwtest is an API Gateway management endpoint for tests: it
// speaks the management API's wire protocol as aws-sdk-go-v2 sends it
// (POST, GET and DELETE /{stage}/@connections/{connectionId}, SigV4
// signed, errors as restJson1 error responses) over real HTTP on
// 127.0.0.1, and records what each connection received and which
// connections were closed by DeleteConnection.
//
//	srv := apigwtest.New(apigwtest.Options{Latency: 20 * time.Millisecond})
//	defer srv.Close()
//	srv.Connect("c1")
//	p, _ := apigw.New(srv.Endpoint(), cfg, apigw.Config{}) // then srv.Received("c1")
//
// Connections it was not told about answer 410 GoneException, as API
// Gateway does for a connection that has gone away; faults (429, 403, any
// status) can be injected per connection.
package apigwtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// MaxPayload is API Gateway's limit on a message: a larger POST is
// answered 413 PayloadTooLargeException.
const MaxPayload = 128 << 10

// Options configure a Server. The zero value answers at once under stage
// "test".
type Options struct {
	// Stage is the first path segment of the endpoint, as in
	// https://{api-id}.execute-api.{region}.amazonaws.com/{stage}.
	// "" means "test".
	Stage string
	// Latency is how long every request takes before it is answered
	// (a request whose client gives up earlier ends then).
	Latency time.Duration
	// TLS serves HTTPS, as API Gateway does, with a certificate of
	// httptest's that Certificate returns for the client to trust, and
	// offers HTTP/2 by ALPN beside HTTP/1.1, unless NoHTTP2.
	TLS, NoHTTP2 bool
	// Credentials, when set, are what every request must be signed with:
	// the server checks each SigV4 signature by signing the request
	// again with the SDK's signer, and refuses a mismatch or a stale
	// signature as API Gateway does (403 InvalidSignatureException).
	// Unset, only the signature's presence and service are checked.
	Credentials *aws.Credentials
}

// Fault is an answer injected for a connection instead of the normal one.
type Fault struct {
	// Status is the HTTP status, 429 for instance.
	Status int
	// Type is the error type sent in X-Amzn-ErrorType, such as
	// "LimitExceededException". "" sends none: an unmodeled error.
	Type string
	// Times is how many requests get the fault before the connection
	// answers normally again. 0 means every request, until Clear.
	Times int
	// Method limits the fault to requests of one HTTP method: "POST"
	// (PostToConnection) for a client that does not read, whose
	// connection can still be closed. "" means every method.
	Method string
}

// The error types of the management API.
const (
	Gone          = "GoneException"
	LimitExceeded = "LimitExceededException"
	Forbidden     = "ForbiddenException"
	BadSignature  = "InvalidSignatureException"
	TooLarge      = "PayloadTooLargeException"
)

// Server is a running management endpoint. Its methods are safe for
// concurrent use.
type Server struct {
	srv   *httptest.Server
	stage string
	creds *aws.Credentials

	mu          sync.Mutex
	latency     time.Duration
	conns       map[string]*conn
	faults      map[string]*Fault // by connection id; AnyConn for all
	inFlight    int
	maxInFlight int
	requests    int
	http2       int
	newConns    int
	deleted     []string
}

// AnyConn, given to Inject as the connection id, injects a fault for
// every connection (API Gateway's account-wide throttle, say). A
// connection's own fault takes precedence.
const AnyConn = "*"

type conn struct {
	connectedAt time.Time
	lastActive  time.Time
	received    [][]byte
}

// New starts a Server on 127.0.0.1.
func New(opts Options) *Server {
	s := &Server{
		stage:   opts.Stage,
		creds:   opts.Credentials,
		latency: opts.Latency,
		conns:   map[string]*conn{},
		faults:  map[string]*Fault{},
	}
	if s.stage == "" {
		s.stage = "test"
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.mu.Lock()
			s.newConns++
			s.mu.Unlock()
		}
	}
	if opts.TLS {
		s.srv.EnableHTTP2 = !opts.NoHTTP2
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	return s
}

// Certificate is the certificate a TLS server presents (Options.TLS),
// for the client's trusted roots; nil without TLS.
func (s *Server) Certificate() *x509.Certificate { return s.srv.Certificate() }

// Close stops the server, ending the requests in flight.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Endpoint is the management endpoint's URL, the value of
// WSBIND_MANAGEMENT_ENDPOINT: http://127.0.0.1:port/{stage}, or https://
// with Options.TLS.
func (s *Server) Endpoint() string { return s.srv.URL + "/" + s.stage }

// SetLatency changes how long each request takes from now on.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Connect opens connections: posts to them succeed until Disconnect.
func (s *Server) Connect(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, id := range ids {
		if _, ok := s.conns[id]; !ok {
			s.conns[id] = &conn{connectedAt: now, lastActive: now}
		}
	}
}

// Disconnect closes a connection: posts to it answer 410 from now on, and
// what it received is forgotten.
func (s *Server) Disconnect(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, id)
}

// Inject makes the next f.Times requests to connection id (every one if
// f.Times is 0) answer f instead. id may be AnyConn.
func (s *Server) Inject(id string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[id] = &f
}

// Clear removes the fault injected for id.
func (s *Server) Clear(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faults, id)
}

// Received returns copies of the frames connection id received, in the
// order their POSTs were answered.
func (s *Server) Received(id string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[id]
	if !ok {
		return nil
	}
	out := make([][]byte, len(c.received))
	for i, b := range c.received {
		out[i] = bytes.Clone(b)
	}
	return out
}

// Deleted returns the connections closed by DeleteConnection, in order.
func (s *Server) Deleted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.deleted...)
}

// Stats are counts since the server started or since ResetStats.
type Stats struct {
	Requests    int // requests answered, whatever the status
	MaxInFlight int // the most requests being served at one moment
	NewConns    int // TCP connections accepted
	HTTP2       int // requests that came over HTTP/2
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Requests: s.requests, MaxInFlight: s.maxInFlight, NewConns: s.newConns, HTTP2: s.http2}
}

// ResetStats sets the counts to zero.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests, s.maxInFlight, s.newConns, s.http2 = 0, s.inFlight, 0, 0
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	latency := s.latency
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.requests++
		if r.ProtoMajor == 2 {
			s.http2++
		}
		s.mu.Unlock()
	}()

	// Read the whole request first, as API Gateway does, then take the
	// request's time.
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxPayload+1))
	if err != nil {
		return // the client went away
	}
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	id, err := s.connID(r)
	if err != nil {
		writeError(w, http.StatusNotFound, "NotFoundException", err.Error())
		return
	}
	// A request API Gateway could not authenticate never reaches a
	// connection. The signature itself is not checked (the server does
	// not know the secret), but its presence and its service are: a
	// client that signs for the wrong service is refused as AWS would.
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") || !strings.Contains(auth, "/execute-api/aws4_request") {
		writeError(w, http.StatusForbidden, Forbidden, "Missing Authentication Token or not signed for execute-api")
		return
	}
	if s.creds != nil {
		if err := checkSignature(r, body, *s.creds); err != nil {
			writeError(w, http.StatusForbidden, BadSignature, err.Error())
			return
		}
	}

	s.mu.Lock()
	f := s.takeFault(id, r.Method)
	c := s.conns[id]
	s.mu.Unlock()
	if f != nil {
		writeError(w, f.Status, f.Type, fmt.Sprintf("injected %d", f.Status))
		return
	}
	if c == nil {
		writeError(w, http.StatusGone, Gone, "")
		return
	}

	switch r.Method {
	case http.MethodPost:
		if len(body) > MaxPayload {
			writeError(w, http.StatusRequestEntityTooLarge, TooLarge, "Message too long")
			return
		}
		s.mu.Lock()
		if c := s.conns[id]; c != nil { // still connected
			c.received = append(c.received, body)
			c.lastActive = time.Now()
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	case http.MethodGet:
		s.mu.Lock()
		resp := map[string]any{
			"connectedAt":  c.connectedAt.UTC().Format(time.RFC3339Nano),
			"lastActiveAt": c.lastActive.UTC().Format(time.RFC3339Nano),
			"identity":     map[string]string{"sourceIp": "127.0.0.1", "userAgent": "apigwtest"},
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	case http.MethodDelete:
		s.mu.Lock()
		delete(s.conns, id)
		s.deleted = append(s.deleted, id)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowedException", r.Method+" not allowed")
	}
}

// connID reads {connectionId} from /{stage}/@connections/{connectionId},
// unescaping it: ids hold "=" and could hold "/", which the SDK escapes.
func (s *Server) connID(r *http.Request) (string, error) {
	prefix := "/" + s.stage + "/@connections/"
	p := r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(p, prefix)
	if !ok || rest == "" || strings.Contains(rest, "/") {
		return "", fmt.Errorf("no route for %s %s (want %s{connectionId})", r.Method, p, prefix)
	}
	id, err := url.PathUnescape(rest)
	if err != nil {
		return "", fmt.Errorf("bad connection id %q: %w", rest, err)
	}
	return id, nil
}

// takeFault returns the fault for a request of method to id, if any, and
// uses up one of its times. s.mu is held.
func (s *Server) takeFault(id, method string) *Fault {
	key := id
	f := s.faults[key]
	if f == nil || (f.Method != "" && f.Method != method) {
		key = AnyConn
		f = s.faults[key]
	}
	if f == nil || (f.Method != "" && f.Method != method) {
		return nil
	}
	out := *f
	if f.Times > 0 {
		if f.Times--; f.Times == 0 {
			delete(s.faults, key)
		}
	}
	return &out
}

// writeError answers as a restJson1 service does: the error type in the
// X-Amzn-ErrorType header, a JSON body with the message.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	if typ != "" {
		w.Header().Set("X-Amzn-ErrorType", typ)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// WaitIdle waits until no request is being served, or ctx ends.
func (s *Server) WaitIdle(ctx context.Context) error {
	for {
		s.mu.Lock()
		n := s.inFlight
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// checkSignature checks r's SigV4 signature (Authorization header) by
// signing a copy of r, with only the headers the client signed, again
// with creds at the time the client gave (X-Amz-Date), and comparing.
func checkSignature(r *http.Request, body []byte, creds aws.Credentials) error {
	auth := r.Header.Get("Authorization")
	fields := map[string]string{}
	for f := range strings.SplitSeq(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 "), ", ") {
		k, v, _ := strings.Cut(f, "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/") // key id, date, region, service, aws4_request
	if len(scope) != 5 || scope[4] != "aws4_request" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return fmt.Errorf("malformed Authorization header %q", auth)
	}
	if scope[0] != creds.AccessKeyID {
		return fmt.Errorf("the security token included in the request is invalid (key id %q)", scope[0])
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return fmt.Errorf("bad X-Amz-Date: %w", err)
	}
	if d := time.Since(at); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("signature expired: signed at %s, %v from now", at.Format(time.RFC3339), d)
	}
	again := &http.Request{
		Method: r.Method, Host: r.Host, Header: http.Header{}, ContentLength: int64(len(body)),
		URL: &url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath},
	}
	for h := range strings.SplitSeq(fields["SignedHeaders"], ";") {
		if h != "host" && h != "content-length" { // the signer adds both itself
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, again, hex.EncodeToString(sum[:]), scope[3], scope[2], at); err != nil {
		return err
	}
	if got := again.Header.Get("Authorization"); got != auth {
		return errors.New("the request signature we calculated does not match the signature you provided")
	}
	return nil
}
