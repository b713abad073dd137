package guest

import (
	"strconv"

	"github.com/wsbind/wsbind/internal/core/jsonv"
	"github.com/wsbind/wsbind/resource"
)

// Bindings is what a route guest says of its bindings (abi.ExportDescribe):
// the document the emulator's debugger page offers in its stream and
// action selects, so that the host never links an application's code.
type Bindings struct {
	Streams []Stream `json:"streams"`
}

// Stream is one binding: its stream, model label and actions.
type Stream struct {
	Stream  string   `json:"stream"`
	Model   string   `json:"model"`
	Actions []Action `json:"actions"`
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
// actions as the binding declares them (built-ins first).
func Describe(reg *resource.Registry) Bindings {
	out := Bindings{Streams: []Stream{}}
	for _, name := range reg.Streams() {
		h := reg.Lookup(name)
		s := Stream{Stream: h.Stream(), Model: h.Model(), Actions: []Action{}}
		for _, a := range h.Actions() {
			s.Actions = append(s.Actions, Action{Name: a.Name, Detail: a.Detail, Custom: a.Custom})
		}
		out.Streams = append(out.Streams, s)
	}
	return out
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
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}"...)
}
