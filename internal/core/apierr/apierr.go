// Package apierr is wsbind's one error type: a closed set of codes, the
// wire status of each, and the messages a client reads. Bindings raise
// these through resource's constructors; the router turns them into
// replies. It is guest code: the standard library only.
package apierr

import (
	"errors"
	"fmt"
)

// Code classifies an error for the wire. The set is closed and the numbers
// are part of the ABI between guest and host: never renumber one.
type Code uint8

const (
	CodeInternal         Code = 0 // 500; the text never reaches the client
	CodeInvalid          Code = 1 // 400; validation failed
	CodeNotFound         Code = 2 // 404; "Not found."
	CodePermissionDenied Code = 3 // 401; "Permission Denied"
	CodeInvalidAction    Code = 4 // 400; "Invalid Action"
	CodeInvalidPage      Code = 5 // 404; "Invalid page." or "Invalid cursor."
	CodeConflict         Code = 6 // 409; a concurrent write won, or the id is taken
	CodeInvalidMessage   Code = 7 // 400; the frame itself is malformed
	CodeInvalidStream    Code = 8 // 400; "Invalid Stream"
	CodeTooLarge         Code = 9 // 413; a reply would exceed the message limit
)

// Status is the response_status a reply carries for the code.
func (c Code) Status() int {
	switch c {
	case CodeInvalid, CodeInvalidAction, CodeInvalidMessage, CodeInvalidStream:
		return 400
	case CodePermissionDenied:
		return 401
	case CodeNotFound, CodeInvalidPage:
		return 404
	case CodeConflict:
		return 409
	case CodeTooLarge:
		return 413
	default:
		return 500
	}
}

// The fixed wire texts. Clients written against channels-api compare them.
const (
	msgNotFound         = "Not found."
	msgPermissionDenied = "Permission Denied"
	msgInvalidAction    = "Invalid Action"
	msgInvalidPage      = "Invalid page."
	msgInvalidCursor    = "Invalid cursor."
	msgInternal         = "Internal Server Error"
	msgInvalidStream    = "Invalid Stream"
)

// FieldError is the list of messages for one field, as Django REST
// framework reports it: {"question_text": ["This field is required."]}.
type FieldError struct {
	Field    string
	Messages []string
}

// Error is the one error type of wsbind. Its Code decides the status; its
// messages (or field messages) are what the client reads. A wrapped cause is
// for the server log only.
type Error struct {
	code     Code
	messages []string
	fields   []FieldError
	cause    error
}

// Code reports the error's code.
func (e *Error) Code() Code { return e.code }

// Messages are the plain messages of the reply's errors list. They are empty
// when the error carries field errors.
func (e *Error) Messages() []string {
	if e.code == CodeInternal {
		return []string{msgInternal}
	}
	return e.messages
}

// Fields are the per-field messages, in declaration order.
func (e *Error) Fields() []FieldError { return e.fields }

func (e *Error) Error() string {
	var s string
	switch {
	case len(e.fields) > 0:
		s = fmt.Sprintf("invalid: %v", e.fields)
	case len(e.messages) > 0:
		s = e.messages[0]
	case e.code == CodeInternal:
		s = "internal"
	default:
		s = fmt.Sprintf("code %d", e.code)
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.cause }

// NotFound answers 404 ["Not found."].
func NotFound() *Error { return &Error{code: CodeNotFound, messages: []string{msgNotFound}} }

// PermissionDenied answers 401 ["Permission Denied"].
func PermissionDenied() *Error {
	return &Error{code: CodePermissionDenied, messages: []string{msgPermissionDenied}}
}

// TokenExpired answers 401 ["Token expired"]: the connection's token has
// expired since it connected.
func TokenExpired() *Error {
	return &Error{code: CodePermissionDenied, messages: []string{"Token expired"}}
}

// InvalidAction answers 400 ["Invalid Action"].
func InvalidAction() *Error {
	return &Error{code: CodeInvalidAction, messages: []string{msgInvalidAction}}
}

// InvalidPage answers 404 ["Invalid page."].
func InvalidPage() *Error { return &Error{code: CodeInvalidPage, messages: []string{msgInvalidPage}} }

// InvalidCursor answers 404 ["Invalid cursor."], DRF's CursorPagination
// wording: a list's keyset position (data.after) that names none. It is
// a page that cannot be served, so its code is CodeInvalidPage.
func InvalidCursor() *Error {
	return &Error{code: CodeInvalidPage, messages: []string{msgInvalidCursor}}
}

// InvalidStream answers 400 ["Invalid Stream"].
func InvalidStream() *Error {
	return &Error{code: CodeInvalidStream, messages: []string{msgInvalidStream}}
}

// InvalidMessage answers 400 ["Invalid Message: <reason>"].
func InvalidMessage(reason string) *Error {
	return &Error{code: CodeInvalidMessage, messages: []string{"Invalid Message: " + reason}}
}

// Invalid answers 400 with the given messages, as a validation error raised
// by an action: Invalid("Question is closed.") → ["Question is closed."].
// With no message it says DRF's "Invalid input.".
func Invalid(messages ...string) *Error {
	if len(messages) == 0 {
		messages = []string{"Invalid input."}
	}
	return &Error{code: CodeInvalid, messages: messages}
}

// InvalidFields answers 400 with one object mapping each field to its
// messages: [{"question_text": ["This field is required."]}]. Fields
// without messages are dropped.
func InvalidFields(fields ...FieldError) *Error {
	kept := make([]FieldError, 0, len(fields))
	for _, f := range fields {
		if len(f.Messages) > 0 {
			kept = append(kept, f)
		}
	}
	if len(kept) == 0 {
		return Invalid()
	}
	return &Error{code: CodeInvalid, fields: kept}
}

// Conflict answers 409 with the message.
func Conflict(message string) *Error {
	return &Error{code: CodeConflict, messages: []string{message}}
}

// TooLarge answers 413 with the message.
func TooLarge(message string) *Error {
	return &Error{code: CodeTooLarge, messages: []string{message}}
}

// Internal wraps an unexpected failure: the client reads 500
// ["Internal Server Error"], the log reads the cause.
func Internal(cause error) *Error { return &Error{code: CodeInternal, cause: cause} }

// AsError returns err as an *Error; anything that is not one becomes
// Internal(err). A nil err gives nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err)
}

// CodeOf reports the code of err: CodeInternal for any error that is not an
// *Error.
func CodeOf(err error) Code { return AsError(err).Code() }
