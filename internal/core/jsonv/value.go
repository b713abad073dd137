package jsonv

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
)

// Appender is a value that writes its own JSON. Types returned by custom
// actions implement it to be written without reflection.
type Appender interface {
	AppendJSON(dst []byte) []byte
}

// AppendValue appends v as JSON without reflection. It knows nil, bools,
// strings, integers, floats, json.RawMessage (written as is), Appender,
// and slices and string-keyed maps of those (maps in key order, as
// encoding/json writes them). ok is false for any other type and for
// non-finite floats.
func AppendValue(dst []byte, v any) (_ []byte, ok bool) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case Appender:
		return v.AppendJSON(dst), true
	case json.RawMessage:
		if v == nil {
			return append(dst, "null"...), true
		}
		return Compact(dst, v), Valid(v)
	case bool:
		return strconv.AppendBool(dst, v), true
	case string:
		return AppendString(dst, v), true
	case int:
		return strconv.AppendInt(dst, int64(v), 10), true
	case int8:
		return strconv.AppendInt(dst, int64(v), 10), true
	case int16:
		return strconv.AppendInt(dst, int64(v), 10), true
	case int32:
		return strconv.AppendInt(dst, int64(v), 10), true
	case int64:
		return strconv.AppendInt(dst, v, 10), true
	case uint:
		return strconv.AppendUint(dst, uint64(v), 10), true
	case uint8:
		return strconv.AppendUint(dst, uint64(v), 10), true
	case uint16:
		return strconv.AppendUint(dst, uint64(v), 10), true
	case uint32:
		return strconv.AppendUint(dst, uint64(v), 10), true
	case uint64:
		return strconv.AppendUint(dst, v, 10), true
	case float32:
		return AppendFloat(dst, float64(v), 32)
	case float64:
		return AppendFloat(dst, v, 64)
	case []any:
		return appendSlice(dst, v)
	case []string:
		return appendSlice(dst, v)
	case []int:
		return appendSlice(dst, v)
	case []int64:
		return appendSlice(dst, v)
	case []float64:
		return appendSlice(dst, v)
	case []bool:
		return appendSlice(dst, v)
	case map[string]any:
		return appendMap(dst, v)
	case map[string]string:
		return appendMap(dst, v)
	case map[string]int:
		return appendMap(dst, v)
	case map[string]int64:
		return appendMap(dst, v)
	case map[string]float64:
		return appendMap(dst, v)
	case map[string]bool:
		return appendMap(dst, v)
	}
	return dst, false
}

func appendSlice[E any](dst []byte, s []E) ([]byte, bool) {
	if s == nil {
		return append(dst, "null"...), true
	}
	dst = append(dst, '[')
	for i, e := range s {
		if i > 0 {
			dst = append(dst, ',')
		}
		var ok bool
		if dst, ok = AppendValue(dst, e); !ok {
			return dst, false
		}
	}
	return append(dst, ']'), true
}

func appendMap[E any](dst []byte, m map[string]E) ([]byte, bool) {
	if m == nil {
		return append(dst, "null"...), true
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, k)
		dst = append(dst, ':')
		var ok bool
		if dst, ok = AppendValue(dst, m[k]); !ok {
			return dst, false
		}
	}
	return append(dst, '}'), true
}

// AppendFloat writes f as encoding/json does: plain decimal between 1e-6
// and 1e21, exponent form outside, shortest round-trip digits. NaN and
// infinities have no JSON form.
func AppendFloat(dst []byte, f float64, bits int) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// Clean up e-09 to e-9.
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}
