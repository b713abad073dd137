// Package protocol reads request frames and writes reply and push frames:
// the wire contract of docs/protocol.md. It knows nothing about bindings.
package protocol

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/wsbind/wsbind/internal/core/apierr"
	"github.com/wsbind/wsbind/internal/core/jsonv"
)

// MaxMessage is API Gateway's limit on one WebSocket message, in bytes. No
// request is read and no reply or push is written past it.
const MaxMessage = 128 << 10

// MaxEcho bounds what a reply echoes of its request (stream, action,
// request_id), so that every error reply, and the 413 reply that replaces a
// reply too large to send, always fits in a message.
const MaxEcho = 1024

// Request is a decoded request frame. Stream, Action and RequestID hold
// what could be read even when the frame is malformed: they are echoed in
// the error reply.
type Request struct {
	Stream    string
	HasStream bool
	Action    string
	HasAction bool
	// PK is payload.pk as a string; "" when absent or null. (A detail
	// action falls back to data.pk; the binding knows which actions are.)
	PK string
	// Data is payload.data; nil when absent or null.
	Data json.RawMessage
	// RequestID is payload.request_id verbatim; nil when absent.
	RequestID json.RawMessage
	// IfVersion is payload.if_version when HasIfVersion: the version a
	// write expects the object at.
	IfVersion    int64
	HasIfVersion bool
	// IdempotencyKey is payload.idempotency_key; "" when absent.
	IdempotencyKey string
}

// MaxIdempotencyKey is the longest idempotency_key, in characters.
const MaxIdempotencyKey = 128

// Decode reads a request frame. A malformed frame gives an InvalidMessage
// error and whatever of the request could be read.
func Decode(frame []byte) (Request, *apierr.Error) {
	var req Request
	if len(frame) > MaxMessage {
		return req, apierr.InvalidMessage("message larger than " + strconv.Itoa(MaxMessage) + " bytes")
	}
	if !utf8.Valid(frame) {
		return req, apierr.InvalidMessage("not valid UTF-8")
	}
	parse := jsonv.ParseObject
	top, ok := parse(frame)
	deep := false
	if !ok {
		// Nested too deeply: say so, with what can be read around the
		// value that is.
		if deep = jsonv.TooDeep(frame); !deep {
			if !jsonv.Valid(frame) {
				return req, apierr.InvalidMessage("not valid JSON")
			}
			return req, apierr.InvalidMessage("not a JSON object")
		}
		parse = jsonv.ParseObjectDeep
		if top, ok = parse(frame); !ok {
			return req, apierr.InvalidMessage(msgTooDeep)
		}
	}
	var payload []jsonv.Member
	payloadErr := ""
	if raw, ok := jsonv.Lookup(top, "payload"); !ok {
		payloadErr = "payload is missing"
	} else if payload, ok = parse(raw); !ok {
		payloadErr = "payload must be an object"
	}
	// Read what can be echoed before reporting anything.
	idErr := ""
	if raw, ok := jsonv.Lookup(payload, "request_id"); ok {
		if id := jsonv.Compact(nil, raw); len(id) <= MaxEcho {
			req.RequestID = id
		} else {
			idErr = "request_id longer than " + strconv.Itoa(MaxEcho) + " bytes"
		}
	}
	streamErr := ""
	if raw, ok := jsonv.Lookup(top, "stream"); !ok {
		streamErr = "stream is missing"
	} else if !readString(raw, &req.Stream) {
		streamErr = "stream must be a string"
	} else if len(req.Stream) > MaxEcho {
		req.Stream, streamErr = "", "stream longer than "+strconv.Itoa(MaxEcho)+" bytes"
	} else {
		req.HasStream = true
	}
	actionErr := ""
	if raw, ok := jsonv.Lookup(payload, "action"); !ok {
		actionErr = "action is missing"
	} else if !readString(raw, &req.Action) {
		actionErr = "action must be a string"
	} else if len(req.Action) > MaxEcho {
		req.Action, actionErr = "", "action longer than "+strconv.Itoa(MaxEcho)+" bytes"
	} else {
		req.HasAction = true
	}
	switch {
	case idErr != "":
		return req, apierr.InvalidMessage(idErr)
	case streamErr != "":
		return req, apierr.InvalidMessage(streamErr)
	case payloadErr != "":
		return req, apierr.InvalidMessage(payloadErr)
	case actionErr != "":
		return req, apierr.InvalidMessage(actionErr)
	case deep:
		return req, apierr.InvalidMessage(msgTooDeep)
	}
	if raw, ok := jsonv.Lookup(payload, "data"); ok && jsonv.KindOf(raw) != jsonv.Null {
		req.Data = raw
	}
	if pk, ok := jsonv.Lookup(payload, "pk"); ok && jsonv.KindOf(pk) != jsonv.Null {
		s, ok := jsonv.Key(pk)
		if !ok {
			return req, apierr.InvalidMessage("pk must be a string or an integer")
		}
		req.PK = s
	}
	if raw, ok := jsonv.Lookup(payload, "if_version"); ok && jsonv.KindOf(raw) != jsonv.Null {
		s, ok := jsonv.Key(raw)
		v, err := strconv.ParseInt(s, 10, 64)
		if !ok || jsonv.KindOf(raw) != jsonv.Number || err != nil || v < 0 {
			return req, apierr.InvalidMessage("if_version must be a non-negative integer")
		}
		req.IfVersion, req.HasIfVersion = v, true
	}
	if raw, ok := jsonv.Lookup(payload, "idempotency_key"); ok && jsonv.KindOf(raw) != jsonv.Null {
		s, ok := jsonv.Unquote(raw)
		if n := utf8.RuneCountInString(s); !ok || jsonv.KindOf(raw) != jsonv.String || n < 1 || n > MaxIdempotencyKey {
			return req, apierr.InvalidMessage("idempotency_key must be a string of 1 to " + strconv.Itoa(MaxIdempotencyKey) + " characters")
		}
		req.IdempotencyKey = s
	}
	return req, nil
}

// msgTooDeep is the reason for a message nested past the parser's limit.
const msgTooDeep = "nested too deeply (more than 1000 levels)"

func readString(raw []byte, s *string) bool {
	v, ok := jsonv.Unquote(raw)
	*s = v
	return ok
}

// Reply writes a reply frame. data may be nil (written as null); an error
// reply has nil data. stream and action are null when the request had
// none that could be read.
func Reply(dst []byte, req *Request, status int, data []byte, err *apierr.Error) []byte {
	return ReplyWith(dst, req, Out{Status: status, Data: data}, err)
}

// Out is a successful reply's content.
type Out struct {
	Status int
	// Data is written as payload.data; nil is null.
	Data []byte
	// Version, when positive, is written as payload.version: the object's
	// version after a create or detail action.
	Version int64
	// Truncated writes data as null, with "truncated": true and PK as
	// payload.pk: the object was too large for one message.
	Truncated bool
	PK        string
	// Cursor, when not "", is written as payload.cursor: a list page's
	// history position.
	Cursor string
}

// ReplyWith writes a reply frame with out's content, or err's.
func ReplyWith(dst []byte, req *Request, out Out, err *apierr.Error) []byte {
	dst = append(dst, `{"stream":`...)
	dst = appendOptString(dst, req.Stream, req.HasStream)
	dst = append(dst, `,"payload":{"action":`...)
	dst = appendOptString(dst, req.Action, req.HasAction)
	dst = append(dst, `,"data":`...)
	status, data := out.Status, out.Data
	switch {
	case err != nil || data == nil || out.Truncated:
		dst = append(dst, "null"...)
	default:
		dst = append(dst, data...)
	}
	if err == nil && out.Truncated {
		dst = append(dst, `,"pk":`...)
		dst = jsonv.AppendString(dst, out.PK)
		dst = append(dst, `,"truncated":true`...)
	}
	if err == nil && out.Version > 0 {
		dst = append(dst, `,"version":`...)
		dst = strconv.AppendInt(dst, out.Version, 10)
	}
	if err == nil && out.Cursor != "" {
		dst = append(dst, `,"cursor":`...)
		dst = jsonv.AppendString(dst, out.Cursor)
	}
	dst = append(dst, `,"errors":`...)
	dst = appendErrors(dst, err)
	dst = append(dst, `,"response_status":`...)
	if err != nil {
		status = err.Code().Status()
	}
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, `,"request_id":`...)
	if req.RequestID == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, req.RequestID...)
	}
	return append(dst, "}}"...)
}

func appendOptString(dst []byte, s string, ok bool) []byte {
	if !ok {
		return append(dst, "null"...)
	}
	return jsonv.AppendString(dst, s)
}

// appendErrors writes the errors list: [] for none, ["msg", ...] for plain
// messages, [{"field": ["msg", ...], ...}] for field errors.
func appendErrors(dst []byte, err *apierr.Error) []byte {
	if err == nil {
		return append(dst, "[]"...)
	}
	fields := err.Fields()
	if len(fields) == 0 {
		return appendStrings(dst, err.Messages())
	}
	dst = append(dst, "[{"...)
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonv.AppendString(dst, f.Field)
		dst = append(dst, ':')
		dst = appendStrings(dst, f.Messages)
	}
	return append(dst, "}]"...)
}

func appendStrings(dst []byte, ss []string) []byte {
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonv.AppendString(dst, s)
	}
	return append(dst, ']')
}

// Push writes a push frame. A nil data is written as null and marks the
// push truncated: the object was too large to send, and the client should
// retrieve it (or learn that it is gone) by other means. A positive
// version is written as payload.version.
func Push(dst []byte, stream, action, model, pk string, version int64, data []byte) []byte {
	return PushAt(dst, PushMeta{Stream: stream, Action: action, Model: model, PK: pk, Version: version}, data)
}

// PushMeta is what a push frame says beside its data: Cursor, when not
// "", is its history position; Replay marks a change sent again to a
// subscription that resumed.
type PushMeta struct {
	Stream, Action, Model, PK string
	Version                   int64
	Cursor                    string
	Replay                    bool
}

// PushAt writes a push frame: data nil means truncated.
func PushAt(dst []byte, m PushMeta, data []byte) []byte {
	dst = append(dst, `{"stream":`...)
	dst = jsonv.AppendString(dst, m.Stream)
	dst = append(dst, `,"payload":{"action":`...)
	dst = jsonv.AppendString(dst, m.Action)
	dst = append(dst, `,"data":`...)
	if data == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, data...)
	}
	dst = append(dst, `,"model":`...)
	dst = jsonv.AppendString(dst, m.Model)
	dst = append(dst, `,"pk":`...)
	dst = jsonv.AppendString(dst, m.PK)
	if m.Version > 0 {
		dst = append(dst, `,"version":`...)
		dst = strconv.AppendInt(dst, m.Version, 10)
	}
	if m.Cursor != "" {
		dst = append(dst, `,"cursor":`...)
		dst = jsonv.AppendString(dst, m.Cursor)
	}
	if m.Replay {
		dst = append(dst, `,"replay":true`...)
	}
	if data == nil {
		dst = append(dst, `,"truncated":true`...)
	}
	return append(dst, "}}"...)
}
