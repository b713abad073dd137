package resource

import (
	"encoding/json"
	"fmt"

	"github.com/wsbind/wsbind/internal/core/apierr"
	"github.com/wsbind/wsbind/internal/core/jsonv"
	"github.com/wsbind/wsbind/internal/core/store"
)

// validate applies client input to obj, as a DRF serializer's is_valid
// does: read-only fields and unknown keys are ignored; on a partial
// (patch) call absent fields are not required. obj is left half-written
// when it fails, so callers discard it then.
func (b *binding[T]) validate(data json.RawMessage, obj *T, partial bool) error {
	var m []jsonv.Member
	if k := jsonv.KindOf(data); len(data) > 0 && k != jsonv.Null {
		if k != jsonv.Object {
			return notADictionary(k)
		}
		var ok bool
		if m, ok = jsonv.ParseObject(data); !ok {
			return notADictionary(jsonv.Invalid)
		}
	}
	var errs []FieldError
	for i := range b.def.Fields {
		f := &b.def.Fields[i]
		if f.opts.readOnly {
			continue
		}
		raw, ok := jsonv.Lookup(m, f.name)
		if !ok && f.opts.def != nil && !partial {
			raw, ok = f.opts.def, true
		}
		if !ok {
			if f.opts.required && !partial {
				errs = append(errs, FieldError{Field: f.name, Messages: []string{msgRequired}})
			}
			continue
		}
		if msgs := f.parse(raw, obj); len(msgs) > 0 {
			errs = append(errs, FieldError{Field: f.name, Messages: msgs})
		}
	}
	if errs != nil {
		return apierr.InvalidFields(errs...)
	}
	return nil
}

// notADictionary is DRF's answer to data that is not an object.
func notADictionary(k jsonv.Kind) error {
	return apierr.InvalidFields(FieldError{Field: "non_field_errors", Messages: []string{"Invalid data. Expected a dictionary, but got " + k.Name() + "."}})
}

// decode reads a stored item into a new object.
func (b *binding[T]) decode(stored []byte) (*T, error) {
	m, ok := jsonv.ParseObject(stored)
	if !ok {
		return nil, fmt.Errorf("%w: %s: not a JSON object", store.ErrCorrupt, b.def.Stream)
	}
	obj := new(T)
	if raw, ok := jsonv.Lookup(m, "id"); ok {
		var id string
		switch jsonv.KindOf(raw) {
		case jsonv.String:
			id, _ = jsonv.Unquote(raw)
		case jsonv.Number:
			id = string(raw)
		default:
			return nil, fmt.Errorf("%w: %s: id is a %s", store.ErrCorrupt, b.def.Stream, jsonv.KindOf(raw).Name())
		}
		*b.def.ID(obj) = id
	}
	for i := range b.def.Fields {
		f := &b.def.Fields[i]
		if raw, ok := jsonv.Lookup(m, f.name); ok {
			if err := f.load(raw, obj); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", store.ErrCorrupt, b.def.Stream, err)
			}
		}
	}
	return obj, nil
}

// encode appends obj as a JSON object: "id" first, then the fields in
// declaration order. The stored form includes write-only fields; the wire
// form leaves them out.
func (b *binding[T]) encode(dst []byte, obj *T, stored bool) []byte {
	dst = append(dst, `{"id":`...)
	dst = jsonv.AppendString(dst, *b.def.ID(obj))
	for i := range b.def.Fields {
		f := &b.def.Fields[i]
		if f.opts.writeOnly && !stored {
			continue
		}
		dst = append(dst, ',')
		dst = jsonv.AppendString(dst, f.name)
		dst = append(dst, ':')
		dst = f.appendTo(dst, obj)
	}
	return append(dst, '}')
}
