package client

import (
	"bytes"
	"encoding/json"
	"math/big"
	"strconv"
)

// Limits of API Gateway for what a client sends (docs/protocol.md §1).
const (
	maxMessage = 131072 // one message
	maxFrame   = 32768  // one frame
	// readLimit is the largest message the client reads: the server sends
	// at most 128 KB, and a little more costs nothing.
	readLimit = 1 << 20
)

// outPayload is a request's payload. Data is marshalled once per call,
// so every attempt sends the same bytes.
type outPayload struct {
	Action         string          `json:"action"`
	PK             *string         `json:"pk,omitempty"`
	Data           json.RawMessage `json:"data,omitempty"`
	RequestID      string          `json:"request_id"`
	IfVersion      *int64          `json:"if_version,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
}

type outFrame struct {
	Stream  string     `json:"stream"`
	Payload outPayload `json:"payload"`
}

// inFrame is anything the server sends: a reply (Status set), a push
// (Status nil), or API Gateway's own message (Payload nil).
type inFrame struct {
	Stream  string     `json:"stream"`
	Payload *inPayload `json:"payload"`
	Message string     `json:"message"`
}

type inPayload struct {
	Action    string          `json:"action"`
	Data      json.RawMessage `json:"data"`
	Errors    json.RawMessage `json:"errors"`
	Status    *int            `json:"response_status"`
	RequestID json.RawMessage `json:"request_id"`
	PK        json.RawMessage `json:"pk"`
	Model     string          `json:"model"`
	Version   int64           `json:"version"`
	Cursor    string          `json:"cursor"`
	Truncated bool            `json:"truncated"`
	Replay    bool            `json:"replay"`
}

// pkString is a pk as sent, a string or an integer, as text ("" if
// absent or of another type).
func pkString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return ""
	}
	if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return string(raw)
	}
	return ""
}

// isNull reports whether raw is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// objectID is data's "id" when data is an object that has one.
func objectID(data json.RawMessage) string {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return ""
	}
	var obj struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(data, &obj) != nil {
		return ""
	}
	return pkString(obj.ID)
}

// filter is a subscription's filter as the client matches pushes with
// it: field name to the JSON value it must equal.
type filter map[string]json.RawMessage

// newFilter normalizes f through JSON, as the wire will carry it.
func newFilter(f map[string]any) (filter, json.RawMessage, error) {
	if len(f) == 0 {
		return nil, nil, nil
	}
	raw, err := json.Marshal(f) // keys sorted: also the subscription's identity
	if err != nil {
		return nil, nil, err
	}
	var out filter
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, nil, err
	}
	return out, raw, nil
}

// matches reports whether the object data matches every field of f, as
// the server decides it (docs/protocol.md §4): numbers by value, other
// scalars exactly. An object that cannot be read matches, so that a
// truncated push is never withheld.
func (f filter) matches(data json.RawMessage) bool {
	if len(f) == 0 || isNull(data) {
		return true
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return true
	}
	for name, want := range f {
		got, ok := obj[name]
		if !ok || !jsonScalarEqual(want, got) {
			return false
		}
	}
	return true
}

// jsonScalarEqual compares two JSON scalars: numbers by value (1 equals
// 1.0), strings by their text, true, false and null by themselves.
func jsonScalarEqual(a, b json.RawMessage) bool {
	a, b = bytes.TrimSpace(a), bytes.TrimSpace(b)
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	switch {
	case a[0] == '"' || b[0] == '"':
		var x, y string
		if a[0] != '"' || b[0] != '"' || json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
			return false
		}
		return x == y
	case isNumberStart(a[0]) || isNumberStart(b[0]):
		if !isNumberStart(a[0]) || !isNumberStart(b[0]) {
			return false
		}
		x, _, errX := big.ParseFloat(string(a), 10, 256, big.ToNearestEven)
		y, _, errY := big.ParseFloat(string(b), 10, 256, big.ToNearestEven)
		return errX == nil && errY == nil && x.Cmp(y) == 0
	default:
		return bytes.Equal(a, b)
	}
}

func isNumberStart(c byte) bool { return c == '-' || (c >= '0' && c <= '9') }
