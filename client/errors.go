package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Errors a call returns when no reply decided it. A server's refusal is
// an *Error instead.
var (
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("wsbind client: closed")
	// ErrConnectionLost: the call could not be completed because there
	// was no connection: it was down when the call's deadline passed, or
	// it dropped under a request that cannot be sent again (an
	// unsubscribe). The request may or may not have reached the server.
	ErrConnectionLost = errors.New("wsbind client: connection lost")
	// ErrTimeout: the request was sent on a working connection and no
	// reply came before the call's deadline.
	ErrTimeout = errors.New("wsbind client: no reply in time")
	// ErrTooLarge: the request is over API Gateway's 128 KB message
	// limit and was not sent (the gateway would close the connection).
	ErrTooLarge = errors.New("wsbind client: request larger than 131072 bytes")
	// ErrUnsubscribed: Next after the subscription's Unsubscribe.
	ErrUnsubscribed = errors.New("wsbind client: unsubscribed")
)

// Error is a reply whose response_status is 400 or more: the server
// received the request and refused it. Use errors.As to get one.
type Error struct {
	// Stream and Action are the request's.
	Stream, Action string
	// Status is the reply's response_status (400, 401, 404, 409, 413,
	// 500, or a custom action's own).
	Status int
	// Messages are the errors given as a list of strings, such as
	// ["Not found."].
	Messages []string
	// Fields are the errors given as Django REST framework field errors,
	// field name to messages, such as {"question_text": ["This field is
	// required."]}.
	Fields map[string][]string
	// Raw is the reply's errors as received.
	Raw json.RawMessage
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wsbind: %s %s: %d", e.Stream, e.Action, e.Status)
	sep := ": "
	for _, m := range e.Messages {
		b.WriteString(sep + m)
		sep = "; "
	}
	names := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		b.WriteString(sep + k + ": " + strings.Join(e.Fields[k], " "))
		sep = "; "
	}
	return b.String()
}

// Has reports whether msg is one of the error's messages.
func (e *Error) Has(msg string) bool {
	for _, m := range e.Messages {
		if m == msg {
			return true
		}
	}
	return false
}

// newError reads a failed reply's errors: a list of strings, or a list
// holding objects of field name to messages. Anything else is kept in
// Raw only.
func newError(stream, action string, status int, raw json.RawMessage) *Error {
	e := &Error{Stream: stream, Action: action, Status: status, Raw: raw}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return e
	}
	for _, it := range items {
		it = bytes.TrimSpace(it)
		switch {
		case len(it) > 0 && it[0] == '"':
			var s string
			if json.Unmarshal(it, &s) == nil {
				e.Messages = append(e.Messages, s)
			}
		case len(it) > 0 && it[0] == '{':
			var fields map[string]json.RawMessage
			if json.Unmarshal(it, &fields) != nil {
				continue
			}
			for name, v := range fields {
				var msgs []string
				if json.Unmarshal(v, &msgs) != nil {
					var one string
					if json.Unmarshal(v, &one) != nil {
						msgs = []string{string(v)}
					} else {
						msgs = []string{one}
					}
				}
				if e.Fields == nil {
					e.Fields = map[string][]string{}
				}
				e.Fields[name] = append(e.Fields[name], msgs...)
			}
		}
	}
	return e
}

// DialError is a handshake the server refused with an HTTP status, such
// as 401 for a token that failed verification.
type DialError struct {
	StatusCode int
	Err        error
}

func (e *DialError) Error() string {
	return fmt.Sprintf("wsbind client: handshake refused with HTTP %d: %v", e.StatusCode, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }
