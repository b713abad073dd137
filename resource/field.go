package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wsbind/wsbind/internal/core/jsonv"
)

// Field is one serializer field of objects of type T: its wire name, how it
// is validated, and an accessor to the Go value it reads and writes. Build
// fields with String, Int, Float, Bool, Time and JSON; no reflection is
// involved, so validation stays fast inside a WebAssembly guest.
type Field[T any] struct {
	name string
	kind kind
	opts fieldOptions
	// parse validates one input value and, when it is valid, stores it in
	// obj. It returns Django REST framework's messages when it is not.
	parse func(raw json.RawMessage, obj *T) []string
	// load reads a stored value; it is lenient about formatting but fails on
	// a value of the wrong type.
	load func(raw json.RawMessage, obj *T) error
	// appendTo writes the field's JSON value.
	appendTo func(dst []byte, obj *T) []byte
}

// Name is the field's wire name.
func (f Field[T]) Name() string { return f.name }

type fieldOptions struct {
	required, readOnly, writeOnly, allowBlank, allowNull, noTrim bool
	maxLength, minLength                                         int // -1 when unset
	minValue, maxValue                                           *float64
	choices                                                      []string
	// def is the Default value's JSON, nil when there is none.
	def []byte
	// set names the options given, for the check that they fit the kind.
	set []string
}

// kind is what a field holds.
type kind uint8

const (
	kindString kind = iota
	kindInt
	kindFloat
	kindBool
	kindTime
	kindJSON
)

func (k kind) String() string {
	return [...]string{"String", "Int", "Float", "Bool", "Time", "JSON"}[k]
}

// fits lists the options that only some kinds take, and those kinds.
var fits = map[string][]kind{
	"AllowBlank": {kindString},
	"NoTrim":     {kindString},
	"MaxLength":  {kindString},
	"MinLength":  {kindString},
	"AllowNull":  {kindJSON},
	"MinValue":   {kindInt, kindFloat},
	"MaxValue":   {kindInt, kindFloat},
	"Choices":    {kindString, kindInt},
}

// Option adjusts a field, as the keyword arguments of a DRF field do.
type Option func(*fieldOptions)

// Required makes the field mandatory on create and update (not on patch).
// Fields are optional unless marked.
func Required() Option { return func(o *fieldOptions) { o.required = true } }

// ReadOnly makes the field output only: input for it is ignored.
func ReadOnly() Option { return func(o *fieldOptions) { o.readOnly = true } }

// WriteOnly makes the field input only: it is stored but never sent.
func WriteOnly() Option { return func(o *fieldOptions) { o.writeOnly = true } }

// AllowBlank lets a string field be "" (or white space only).
func AllowBlank() Option {
	return func(o *fieldOptions) { o.allowBlank = true; o.set = append(o.set, "AllowBlank") }
}

// AllowNull lets a JSON field be null. Scalar fields never take null.
func AllowNull() Option {
	return func(o *fieldOptions) { o.allowNull = true; o.set = append(o.set, "AllowNull") }
}

// NoTrim keeps leading and trailing white space of a string field, which is
// trimmed by default (DRF's trim_whitespace).
func NoTrim() Option {
	return func(o *fieldOptions) { o.noTrim = true; o.set = append(o.set, "NoTrim") }
}

// MaxLength caps a string field's length in characters.
func MaxLength(n int) Option {
	return func(o *fieldOptions) { o.maxLength = n; o.set = append(o.set, "MaxLength") }
}

// MinLength sets a string field's least length in characters.
func MinLength(n int) Option {
	return func(o *fieldOptions) { o.minLength = n; o.set = append(o.set, "MinLength") }
}

// MinValue sets a number field's least value.
func MinValue(v float64) Option {
	return func(o *fieldOptions) { o.minValue = &v; o.set = append(o.set, "MinValue") }
}

// MaxValue sets a number field's greatest value.
func MaxValue(v float64) Option {
	return func(o *fieldOptions) { o.maxValue = &v; o.set = append(o.set, "MaxValue") }
}

// Choices limits a string or integer field to the values given:
// Choices("draft", "public") or Choices(1, 2, 3).
func Choices[V string | int](values ...V) Option {
	texts := make([]string, len(values))
	for i, v := range values {
		switch v := any(v).(type) {
		case string:
			texts[i] = v
		case int:
			texts[i] = strconv.Itoa(v)
		}
	}
	return func(o *fieldOptions) { o.choices = texts; o.set = append(o.set, "Choices") }
}

// Default gives a field a value for a create or a full update that leaves
// it out (DRF's default=): a string, number or bool, or json.RawMessage
// for a JSON field. The value is validated as input would be, at New.
func Default(value any) Option {
	raw, ok := jsonv.AppendValue(nil, value)
	return func(o *fieldOptions) {
		o.def = raw
		if !ok {
			o.def = []byte{} // not JSON: New refuses it
		}
	}
}

func newOptions(opts []Option) fieldOptions {
	o := fieldOptions{maxLength: -1, minLength: -1}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Django REST framework's messages.
const (
	msgRequired      = "This field is required."
	msgNull          = "This field may not be null."
	msgBlank         = "This field may not be blank."
	msgNotString     = "Not a valid string."
	msgNotInteger    = "A valid integer is required."
	msgNotNumber     = "A valid number is required."
	msgNotBool       = "Must be a valid boolean."
	msgStringTooLong = "String value too large."
	msgDatetime      = "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)

// maxNumberText is DRF's max_string_length for number fields.
const maxNumberText = 1000

func (o *fieldOptions) checkChoice(value string) []string {
	if o.choices != nil && !slices.Contains(o.choices, value) {
		return []string{fmt.Sprintf("%q is not a valid choice.", value)}
	}
	return nil
}

func (o *fieldOptions) checkRange(v float64) []string {
	var msgs []string
	if o.maxValue != nil && v > *o.maxValue {
		msgs = append(msgs, "Ensure this value is less than or equal to "+formatLimit(*o.maxValue)+".")
	}
	if o.minValue != nil && v < *o.minValue {
		msgs = append(msgs, "Ensure this value is greater than or equal to "+formatLimit(*o.minValue)+".")
	}
	return msgs
}

func formatLimit(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// String declares a text field (DRF's CharField). Numbers sent for it are
// taken as their decimal text.
func String[T any](name string, get func(*T) *string, opts ...Option) Field[T] {
	o := newOptions(opts)
	return Field[T]{
		name: name,
		kind: kindString,
		opts: o,
		parse: func(raw json.RawMessage, obj *T) []string {
			var s string
			switch jsonv.KindOf(raw) {
			case jsonv.Null:
				return []string{msgNull}
			case jsonv.String:
				var ok bool
				if s, ok = jsonv.Unquote(raw); !ok {
					return []string{msgNotString}
				}
			case jsonv.Number:
				s = numberString(raw)
			default:
				return []string{msgNotString}
			}
			if !o.noTrim {
				s = strings.TrimSpace(s)
			}
			if s == "" && !o.allowBlank {
				return []string{msgBlank}
			}
			n := len([]rune(s))
			var msgs []string
			if o.maxLength >= 0 && n > o.maxLength {
				msgs = append(msgs, fmt.Sprintf("Ensure this field has no more than %d characters.", o.maxLength))
			}
			if o.minLength >= 0 && n < o.minLength {
				msgs = append(msgs, fmt.Sprintf("Ensure this field has at least %d characters.", o.minLength))
			}
			msgs = append(msgs, o.checkChoice(s)...)
			if msgs == nil {
				*get(obj) = s
			}
			return msgs
		},
		load: func(raw json.RawMessage, obj *T) error {
			switch jsonv.KindOf(raw) {
			case jsonv.Null:
				*get(obj) = ""
				return nil
			case jsonv.Number:
				*get(obj) = string(raw)
				return nil
			}
			s, ok := jsonv.Unquote(raw)
			if !ok {
				return fmt.Errorf("field %s: %s is not a string", name, raw)
			}
			*get(obj) = s
			return nil
		},
		appendTo: func(dst []byte, obj *T) []byte { return jsonv.AppendString(dst, *get(obj)) },
	}
}

// integer is the set of Go integer types an Int field can hold.
type integer interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64
}

// Int declares an integer field (DRF's IntegerField). It takes integers,
// integral numbers such as 2.0, and strings that hold either.
func Int[T any, N integer](name string, get func(*T) *N, opts ...Option) Field[T] {
	o := newOptions(opts)
	return Field[T]{
		name: name,
		kind: kindInt,
		opts: o,
		parse: func(raw json.RawMessage, obj *T) []string {
			var text string
			switch jsonv.KindOf(raw) {
			case jsonv.Null:
				return []string{msgNull}
			case jsonv.Number:
				text = string(raw)
			case jsonv.String:
				var ok bool
				if text, ok = jsonv.Unquote(raw); !ok {
					return []string{msgNotInteger}
				}
				if len(text) > maxNumberText {
					return []string{msgStringTooLong}
				}
			default:
				return []string{msgNotInteger}
			}
			v, ok := parseInteger(text)
			if !ok || int64(N(v)) != v {
				return []string{msgNotInteger}
			}
			msgs := o.checkRange(float64(v))
			msgs = append(msgs, o.checkChoice(strconv.FormatInt(v, 10))...)
			if msgs == nil {
				*get(obj) = N(v)
			}
			return msgs
		},
		load: func(raw json.RawMessage, obj *T) error {
			if jsonv.KindOf(raw) == jsonv.Null {
				*get(obj) = 0
				return nil
			}
			text, err := numberText(raw)
			if err != nil {
				return fmt.Errorf("field %s: %w", name, err)
			}
			v, ok := parseInteger(text)
			if !ok || int64(N(v)) != v {
				return fmt.Errorf("field %s: %q is not an integer", name, raw)
			}
			*get(obj) = N(v)
			return nil
		},
		appendTo: func(dst []byte, obj *T) []byte { return strconv.AppendInt(dst, int64(*get(obj)), 10) },
	}
}

// parseInteger reads a decimal integer, allowing what Python's int(str(x))
// allows after DRF strips a trailing ".0": surrounding white space, a sign,
// a fraction of zeros, and an exponent that keeps it integral (2e3 as JSON).
func parseInteger(text string) (int64, bool) {
	text = strings.TrimSpace(text)
	if v, err := strconv.ParseInt(text, 10, 64); err == nil {
		return v, true
	}
	if strings.ContainsAny(text, ".eE") {
		if f, err := strconv.ParseFloat(text, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), true
		}
	}
	return 0, false
}

// Float declares a number field (DRF's FloatField).
func Float[T any](name string, get func(*T) *float64, opts ...Option) Field[T] {
	o := newOptions(opts)
	return Field[T]{
		name: name,
		kind: kindFloat,
		opts: o,
		parse: func(raw json.RawMessage, obj *T) []string {
			var text string
			switch jsonv.KindOf(raw) {
			case jsonv.Null:
				return []string{msgNull}
			case jsonv.Number:
				text = string(raw)
			case jsonv.String:
				var ok bool
				if text, ok = jsonv.Unquote(raw); !ok {
					return []string{msgNotNumber}
				}
				if len(text) > maxNumberText {
					return []string{msgStringTooLong}
				}
			default:
				return []string{msgNotNumber}
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
			if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
				return []string{msgNotNumber}
			}
			msgs := o.checkRange(v)
			if msgs == nil {
				*get(obj) = v
			}
			return msgs
		},
		load: func(raw json.RawMessage, obj *T) error {
			if jsonv.KindOf(raw) == jsonv.Null {
				*get(obj) = 0
				return nil
			}
			text, err := numberText(raw)
			if err != nil {
				return fmt.Errorf("field %s: %w", name, err)
			}
			v, err := strconv.ParseFloat(text, 64)
			if err != nil {
				return fmt.Errorf("field %s: %w", name, err)
			}
			*get(obj) = v
			return nil
		},
		appendTo: func(dst []byte, obj *T) []byte {
			return strconv.AppendFloat(dst, *get(obj), 'g', -1, 64)
		},
	}
}

// Bool declares a boolean field (DRF's BooleanField): true and false, 1 and
// 0, and DRF's words ("true", "yes", "on", "1", ...) are accepted.
func Bool[T any](name string, get func(*T) *bool, opts ...Option) Field[T] {
	o := newOptions(opts)
	return Field[T]{
		name: name,
		kind: kindBool,
		opts: o,
		parse: func(raw json.RawMessage, obj *T) []string {
			v, ok, null := parseBool(raw)
			if null {
				return []string{msgNull}
			}
			if !ok {
				return []string{msgNotBool}
			}
			*get(obj) = v
			return nil
		},
		load: func(raw json.RawMessage, obj *T) error {
			v, ok, null := parseBool(raw)
			if null {
				*get(obj) = false
				return nil
			}
			if !ok {
				return fmt.Errorf("field %s: %q is not a boolean", name, raw)
			}
			*get(obj) = v
			return nil
		},
		appendTo: func(dst []byte, obj *T) []byte { return strconv.AppendBool(dst, *get(obj)) },
	}
}

func parseBool(raw json.RawMessage) (v, ok, null bool) {
	switch jsonv.KindOf(raw) {
	case jsonv.Null:
		return false, false, true
	case jsonv.Bool:
		return raw[0] == 't', true, false
	case jsonv.Number:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err == nil && (f == 0 || f == 1) {
			return f == 1, true, false
		}
	case jsonv.String:
		if s, ok := jsonv.Unquote(raw); ok {
			switch s {
			case "t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "1":
				return true, true, false
			case "f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "0":
				return false, true, false
			}
		}
	}
	return false, false, false
}

// timeLayouts are the input layouts a Time field accepts, most common
// first. A time without an offset is taken as UTC.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04Z07:00",
	"2006-01-02 15:04",
}

// timeOutput is how a Time field is written: RFC 3339 in UTC with up to
// microseconds, as DRF writes datetimes.
const timeOutput = "2006-01-02T15:04:05.999999Z07:00"

func parseTime(s string) (time.Time, bool) {
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// Time declares a date-time field (DRF's DateTimeField), written as RFC 3339
// in UTC.
func Time[T any](name string, get func(*T) *time.Time, opts ...Option) Field[T] {
	o := newOptions(opts)
	return Field[T]{
		name: name,
		kind: kindTime,
		opts: o,
		parse: func(raw json.RawMessage, obj *T) []string {
			var s string
			switch jsonv.KindOf(raw) {
			case jsonv.Null:
				return []string{msgNull}
			case jsonv.String:
				var ok bool
				if s, ok = jsonv.Unquote(raw); !ok {
					return []string{msgDatetime}
				}
			default:
				return []string{msgDatetime}
			}
			t, ok := parseTime(strings.TrimSpace(s))
			if !ok {
				return []string{msgDatetime}
			}
			*get(obj) = t
			return nil
		},
		load: func(raw json.RawMessage, obj *T) error {
			if jsonv.KindOf(raw) == jsonv.Null {
				*get(obj) = time.Time{}
				return nil
			}
			s, ok := jsonv.Unquote(raw)
			if !ok {
				return fmt.Errorf("field %s: %s is not a string", name, raw)
			}
			t, ok := parseTime(s)
			if !ok {
				return fmt.Errorf("field %s: %q is not a time", name, s)
			}
			*get(obj) = t
			return nil
		},
		appendTo: func(dst []byte, obj *T) []byte {
			t := *get(obj)
			if t.IsZero() {
				return append(dst, "null"...)
			}
			dst = append(dst, '"')
			dst = t.UTC().AppendFormat(dst, timeOutput)
			return append(dst, '"')
		},
	}
}

// JSON declares a field holding any JSON value (DRF's JSONField), kept as
// its raw text.
func JSON[T any](name string, get func(*T) *json.RawMessage, opts ...Option) Field[T] {
	o := newOptions(opts)
	return Field[T]{
		name: name,
		kind: kindJSON,
		opts: o,
		parse: func(raw json.RawMessage, obj *T) []string {
			if jsonv.KindOf(raw) == jsonv.Null && !o.allowNull {
				return []string{msgNull}
			}
			*get(obj) = compact(raw)
			return nil
		},
		load: func(raw json.RawMessage, obj *T) error {
			*get(obj) = compact(raw)
			return nil
		},
		appendTo: func(dst []byte, obj *T) []byte {
			v := *get(obj)
			if len(v) == 0 {
				return append(dst, "null"...)
			}
			return append(dst, v...)
		},
	}
}

// compact copies a raw value without insignificant white space.
func compact(raw json.RawMessage) json.RawMessage { return jsonv.Compact(nil, raw) }

// numberString is the text DRF makes of a number sent for a text field:
// Python's str() of what json.loads gives. integer literals stay as typed
// ("-0" becomes "0"); any other number is a float, written the shortest
// way that reads back, with ".0" on integral values and an exponent below
// 1e-4 and from 1e16 on ("100000.0", "1.5", "1e+16", "1.5e-05").
func numberString(raw []byte) string {
	if s, ok := jsonv.Key(raw); ok {
		return s
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		// json.loads reads 1e400 as inf and -1e400 as -inf; so does str().
		if math.IsInf(f, -1) {
			return "-inf"
		}
		return "inf"
	}
	exp := strconv.AppendFloat(nil, f, 'e', -1, 64)
	e, _ := strconv.Atoi(string(exp[bytes.IndexByte(exp, 'e')+1:]))
	if e < -4 || e >= 16 {
		return string(exp)
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// numberText is the text of a stored number, which may also be stored as a
// string holding one.
func numberText(raw json.RawMessage) (string, error) {
	switch jsonv.KindOf(raw) {
	case jsonv.Number:
		return string(raw), nil
	case jsonv.String:
		if s, ok := jsonv.Unquote(raw); ok {
			return s, nil
		}
	}
	return "", fmt.Errorf("%s is not a number", raw)
}
