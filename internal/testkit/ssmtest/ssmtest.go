// Package ssmtest is a Systems Manager Parameter Store endpoint for tests,
// GetParameter alone: it speaks the wire protocol aws-sdk-go-v2 sends
// (POST / with X-Amz-Target AmazonSSM.GetParameter, AWS JSON 1.1 bodies,
// SigV4 signed, errors as {"__type": ..., "message": ...} with status
// 400) over real HTTP on 127.0.0.1. No SSM emulator is at hand, and the
// one call the authorizer makes is small enough to stand in for.
//
//	srv := ssmtest.New(map[string]ssmtest.Param{"/app/secret": {Type: "SecureString", Value: "..."}})
//	defer srv.Close()
//	client := ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.BaseEndpoint = aws.String(srv.URL) })
package ssmtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// Param is a stored parameter: Type is String, StringList or
// SecureString.
type Param struct{ Type, Value string }

// Server is the endpoint; URL is its base.
type Server struct {
	*httptest.Server
	mu     sync.Mutex
	params map[string]Param
	faults map[string]string // parameter → error code every read of it answers
	calls  int
}

// New serves params by name.
func New(params map[string]Param) *Server {
	s := &Server{params: params, faults: map[string]string{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Fail makes every GetParameter of name answer the error code
// (AccessDeniedException, ThrottlingException, ...), status 400, as
// Parameter Store answers them.
func (s *Server) Fail(name, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[name] = code
}

// Calls is how many GetParameter requests arrived.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		apiError(w, http.StatusNotFound, "UnknownOperationException", r.Method+" "+r.URL.Path)
		return
	}
	if target := r.Header.Get("X-Amz-Target"); target != "AmazonSSM.GetParameter" {
		apiError(w, http.StatusBadRequest, "UnknownOperationException", "operation "+target+" is not served here")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		apiError(w, http.StatusBadRequest, "SerializationException", "Content-Type "+ct)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		apiError(w, http.StatusBadRequest, "MissingAuthenticationTokenException", "request is not SigV4 signed")
		return
	}
	var in struct {
		Name           string
		WithDecryption bool
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Name == "" {
		apiError(w, http.StatusBadRequest, "ValidationException", fmt.Sprintf("body: %v", err))
		return
	}
	s.mu.Lock()
	s.calls++
	fault := s.faults[in.Name]
	p, ok := s.params[in.Name]
	s.mu.Unlock()
	switch {
	case fault == "AccessDeniedException":
		apiError(w, http.StatusBadRequest, fault, "User: arn:aws:sts::123456789012:assumed-role/test/fn is not authorized to perform: ssm:GetParameter on resource: arn:aws:ssm:us-east-1:123456789012:parameter"+in.Name)
		return
	case fault != "":
		apiError(w, http.StatusBadRequest, fault, "Rate exceeded")
		return
	case !ok:
		apiError(w, http.StatusBadRequest, "ParameterNotFound", "")
		return
	}
	value := p.Value
	if p.Type == "SecureString" && !in.WithDecryption {
		value = "AQICAHencrypted==" // ciphertext, as the service returns it undecrypted
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{
		"Name": in.Name, "Type": p.Type, "Value": value, "Version": 1, "DataType": "text",
		"ARN": "arn:aws:ssm:us-east-1:123456789012:parameter" + in.Name,
	}})
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
