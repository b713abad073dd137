package guest

import (
	"encoding/json"
	"strconv"

	"github.com/wsbind/wsbind/internal/core/call"
	"github.com/wsbind/wsbind/internal/core/jsonv"
	"github.com/wsbind/wsbind/resource"
)

// Bindings is what a route guest says of its bindings (abi.ExportDescribe):
// the document the emulator's debugger page offers in its stream and
// action selects, and that tools turn into an AsyncAPI document, so that
// the host never links an application's code.
type Bindings struct {
	Streams []Stream `json:"streams"`
}

// Stream is one binding: its stream, model label, actions, list page size
// and the fields of its objects. (page_size and fields came later, and
// follow what the debugger page reads.)
type Stream struct {
	Stream   string   `json:"stream"`
	Model    string   `json:"model"`
	Actions  []Action `json:"actions"`
	PageSize int      `json:"page_size"`
	Fields   []Field  `json:"fields"`
}

// Field is one field of a binding's objects: "id" (the pk) first, then the
// serializer's fields in output order. Options left unset are absent.
type Field struct {
	Name string `json:"name"`
	// Type is "string", "integer", "number", "boolean", "date-time" (an
	// RFC 3339 string, written as null while unset) or "json" (any JSON).
	Type string `json:"type"`
	PK   bool   `json:"pk,omitempty"`
	// Required: create and update must send it. ReadOnly fields are only
	// in output, WriteOnly ones only in input.
	Required  bool `json:"required,omitempty"`
	ReadOnly  bool `json:"read_only,omitempty"`
	WriteOnly bool `json:"write_only,omitempty"`
	// MaxLength and MinLength count a string's characters.
	MaxLength *int `json:"max_length,omitempty"`
	MinLength *int `json:"min_length,omitempty"`
	// Minimum and Maximum bound a number, inclusive.
	Minimum *float64 `json:"minimum,omitempty"`
	Maximum *float64 `json:"maximum,omitempty"`
	// Enum lists the values allowed (the field's Choices).
	Enum []json.RawMessage `json:"enum,omitempty"`
	// Default is the value stored when create or update leaves it out.
	Default json.RawMessage `json:"default,omitempty"`
	// Nullable: input may be null. AllowBlank: a string may be empty.
	Nullable   bool `json:"nullable,omitempty"`
	AllowBlank bool `json:"allow_blank,omitempty"`
}

// Action is one action a binding offers. Detail actions take a pk; custom
// ones are the binding's own (channels-api's @detail_action and
// @list_action).
type Action struct {
	Name   string `json:"name"`
	Detail bool   `json:"detail"`
	Custom bool   `json:"custom"`
}

// Describe lists the registry's bindings, streams in order and each one's
// fields and actions as the binding declares them (built-in actions
// first).
func Describe(reg *resource.Registry) Bindings {
	out := Bindings{Streams: []Stream{}}
	settings := reg.Settings()
	for _, name := range reg.Streams() {
		h := reg.Lookup(name)
		s := Stream{Stream: h.Stream(), Model: h.Model(), PageSize: h.PageSize(&settings), Fields: []Field{}, Actions: []Action{}}
		for _, f := range h.Fields() {
			s.Fields = append(s.Fields, describeField(f))
		}
		for _, a := range h.Actions() {
			s.Actions = append(s.Actions, Action{Name: a.Name, Detail: a.Detail, Custom: a.Custom})
		}
		out.Streams = append(out.Streams, s)
	}
	return out
}

func describeField(f call.Field) Field {
	d := Field{
		Name: f.Name, Type: f.Type, PK: f.PK,
		Required: f.Required, ReadOnly: f.ReadOnly, WriteOnly: f.WriteOnly,
		Minimum: f.Minimum, Maximum: f.Maximum,
		Nullable: f.AllowNull, AllowBlank: f.AllowBlank,
	}
	if f.MaxLength >= 0 {
		d.MaxLength = &f.MaxLength
	}
	if f.MinLength >= 0 {
		d.MinLength = &f.MinLength
	}
	for _, c := range f.Choices {
		if f.Type == "integer" {
			// Integer choices are their decimal text: a JSON number.
			d.Enum = append(d.Enum, json.RawMessage(c))
		} else {
			d.Enum = append(d.Enum, jsonv.AppendString(nil, c))
		}
	}
	if f.Default != nil {
		d.Default = f.Default
	}
	return d
}

// DescribeEntry is the describe export over reg: any input, the
// registry's Bindings as JSON out. nil reg (a guest without bindings)
// describes none. It writes the JSON itself: encoding/json's reflection
// over these structs would add about 400 KB to the route guest.
func DescribeEntry(reg *resource.Registry) Entry {
	return func([]byte) []byte {
		d := Bindings{Streams: []Stream{}}
		if reg != nil {
			d = Describe(reg)
		}
		return d.AppendJSON(nil)
	}
}

// AppendJSON appends the document as JSON, as encoding/json would write
// it with the struct tags above.
func (d Bindings) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"streams":[`...)
	for i, s := range d.Streams {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"stream":`...)
		dst = jsonv.AppendString(dst, s.Stream)
		dst = append(dst, `,"model":`...)
		dst = jsonv.AppendString(dst, s.Model)
		dst = append(dst, `,"actions":[`...)
		for j, a := range s.Actions {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"name":`...)
			dst = jsonv.AppendString(dst, a.Name)
			dst = append(dst, `,"detail":`...)
			dst = strconv.AppendBool(dst, a.Detail)
			dst = append(dst, `,"custom":`...)
			dst = strconv.AppendBool(dst, a.Custom)
			dst = append(dst, '}')
		}
		dst = append(dst, `],"page_size":`...)
		dst = strconv.AppendInt(dst, int64(s.PageSize), 10)
		dst = append(dst, `,"fields":[`...)
		for j := range s.Fields {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = s.Fields[j].appendJSON(dst)
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}"...)
}

// appendJSON writes the field as encoding/json would, omitting what is
// unset. A bound that is not a finite number has no JSON form and is left
// out; Enum and Default hold JSON already.
func (f *Field) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"name":`...)
	dst = jsonv.AppendString(dst, f.Name)
	dst = append(dst, `,"type":`...)
	dst = jsonv.AppendString(dst, f.Type)
	dst = appendTrue(dst, "pk", f.PK)
	dst = appendTrue(dst, "required", f.Required)
	dst = appendTrue(dst, "read_only", f.ReadOnly)
	dst = appendTrue(dst, "write_only", f.WriteOnly)
	dst = appendInt(dst, "max_length", f.MaxLength)
	dst = appendInt(dst, "min_length", f.MinLength)
	dst = appendFloat(dst, "minimum", f.Minimum)
	dst = appendFloat(dst, "maximum", f.Maximum)
	if len(f.Enum) > 0 {
		dst = append(appendKey(dst, "enum"), '[')
		for i, v := range f.Enum {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, v...)
		}
		dst = append(dst, ']')
	}
	if len(f.Default) > 0 {
		dst = appendKey(dst, "default")
		dst = append(dst, f.Default...)
	}
	dst = appendTrue(dst, "nullable", f.Nullable)
	dst = appendTrue(dst, "allow_blank", f.AllowBlank)
	return append(dst, '}')
}

// The helpers below stay out of line: inlined, each append expands in
// wasm, and appendJSON compiled to 11 KB instead of 4.
//
//go:noinline
func appendKey(dst []byte, key string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

//go:noinline
func appendTrue(dst []byte, key string, on bool) []byte {
	if !on {
		return dst
	}
	return append(appendKey(dst, key), "true"...)
}

//go:noinline
func appendInt(dst []byte, key string, v *int) []byte {
	if v == nil {
		return dst
	}
	return strconv.AppendInt(appendKey(dst, key), int64(*v), 10)
}

//go:noinline
func appendFloat(dst []byte, key string, v *float64) []byte {
	if v == nil {
		return dst
	}
	if num, ok := jsonv.AppendFloat(appendKey(dst, key), *v, 64); ok {
		return num
	}
	return dst
}
