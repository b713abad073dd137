package runtimeapi

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is a stand-in for the Lambda Runtime API (version
// 2018-06-01), enough to run a bootstrap outside Lambda: point the
// process's AWS_LAMBDA_RUNTIME_API at Addr, then Invoke. It serves
// GET  /2018-06-01/runtime/invocation/next (one queued event, long-polled),
// POST /2018-06-01/runtime/invocation/{id}/response and .../{id}/error,
// and POST /2018-06-01/runtime/init/error. Tests and the cold-start
// benchmark use it; Lambda itself never does.
type Server struct {
	srv    *http.Server
	ln     net.Listener
	queue  chan *invocation
	closed chan struct{}
	polled chan struct{} // closed at the first GET .../next

	mu       sync.Mutex
	inflight map[string]*invocation
	seq      int
	initErr  *Response
	once     sync.Once
}

// Response is what the runtime posted back for one invocation.
type Response struct {
	RequestID string
	// Body is the response, or the error document when Error is set.
	Body []byte
	// Error reports a POST to .../error: the invocation failed.
	Error bool
	// ErrorType is the Lambda-Runtime-Function-Error-Type header of an
	// error.
	ErrorType string
}

type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	done     chan Response
}

// ErrClosed is returned by Invoke once the Server is closed.
var ErrClosed = errors.New("runtime API closed")

// New starts a Server on a free port of 127.0.0.1.
func New() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Server{
		ln:       ln,
		queue:    make(chan *invocation),
		closed:   make(chan struct{}),
		polled:   make(chan struct{}),
		inflight: map[string]*invocation{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", r.next)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/response", r.respond)
	mux.HandleFunc("POST /2018-06-01/runtime/invocation/{id}/error", r.respond)
	mux.HandleFunc("POST /2018-06-01/runtime/init/error", r.initError)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

// Addr is the host:port to put in AWS_LAMBDA_RUNTIME_API.
func (r *Server) Addr() string { return r.ln.Addr().String() }

// Polled is closed when the runtime first asks for an event: its
// initialization is over (Lambda's "Init Duration" ends there).
func (r *Server) Polled() <-chan struct{} { return r.polled }

// InitError returns what the runtime posted to .../init/error, if it did.
func (r *Server) InitError() (Response, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.initErr == nil {
		return Response{}, false
	}
	return *r.initErr, true
}

// Invoke hands payload to the runtime as the next event and waits for
// what it posts back. The event's deadline is ctx's, or a minute from now.
func (r *Server) Invoke(ctx context.Context, payload []byte) (Response, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Minute)
	}
	r.mu.Lock()
	r.seq++
	inv := &invocation{
		id:       "req-" + strconv.Itoa(r.seq),
		payload:  payload,
		deadline: deadline,
		done:     make(chan Response, 1),
	}
	r.mu.Unlock()
	select {
	case r.queue <- inv:
	case <-ctx.Done():
		return Response{}, ctx.Err()
	case <-r.closed:
		return Response{}, ErrClosed
	}
	select {
	case resp := <-inv.done:
		return resp, nil
	case <-ctx.Done():
		return Response{}, ctx.Err()
	case <-r.closed:
		return Response{}, ErrClosed
	}
}

// Close stops the server; pending and later Invokes return ErrClosed.
func (r *Server) Close() error {
	r.once.Do(func() { close(r.closed) })
	return r.srv.Close()
}

func (r *Server) next(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	select {
	case <-r.polled:
	default:
		close(r.polled)
	}
	r.mu.Unlock()
	var inv *invocation
	select {
	case inv = <-r.queue:
	case <-req.Context().Done():
		return
	case <-r.closed:
		http.Error(w, "closed", http.StatusGone)
		return
	}
	r.mu.Lock()
	r.inflight[inv.id] = inv
	r.mu.Unlock()
	h := w.Header()
	h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
	h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
	h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:wsbind")
	h.Set("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0")
	h.Set("Content-Type", "application/json")
	w.Write(inv.payload)
}

func (r *Server) respond(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	inv := r.inflight[id]
	delete(r.inflight, id)
	r.mu.Unlock()
	if inv == nil {
		http.Error(w, "unknown request id", http.StatusBadRequest)
		return
	}
	inv.done <- Response{
		RequestID: id,
		Body:      body,
		Error:     strings.HasSuffix(req.URL.Path, "/error"),
		ErrorType: req.Header.Get("Lambda-Runtime-Function-Error-Type"),
	}
	w.WriteHeader(http.StatusAccepted)
}

func (r *Server) initError(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.initErr = &Response{Body: body, Error: true, ErrorType: req.Header.Get("Lambda-Runtime-Function-Error-Type")}
	r.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}
