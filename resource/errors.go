package resource

import "github.com/wsbind/wsbind/internal/core/apierr"

// FieldError is the list of messages for one field, as Django REST
// framework reports it: {"question_text": ["This field is required."]}.
type FieldError = apierr.FieldError

// NotFound answers 404 ["Not found."].
func NotFound() error { return apierr.NotFound() }

// PermissionDenied answers 401 ["Permission Denied"].
func PermissionDenied() error { return apierr.PermissionDenied() }

// Invalid answers 400 with the given messages, as a validation error raised
// by an action: Invalid("Question is closed.") → ["Question is closed."].
// With no message it says DRF's "Invalid input.".
func Invalid(messages ...string) error { return apierr.Invalid(messages...) }

// InvalidFields answers 400 with one object mapping each field to its
// messages: [{"question_text": ["This field is required."]}].
func InvalidFields(fields ...FieldError) error { return apierr.InvalidFields(fields...) }

// Conflict answers 409 with the message.
func Conflict(message string) error { return apierr.Conflict(message) }
