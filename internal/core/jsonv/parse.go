package jsonv

import (
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
// encoding/json allows 10,000 levels, but in a guest each level is a wasm
// call: at 10,000, wasmtime's default stack traps (the golden
// suite showed it). 1,000 is Python's own limit for json.loads, so no
// client of channels-api ever sent more.
const maxDepth = 1000

// Member is one member of a JSON object: its key and its raw value.
type Member struct {
	key   []byte // the raw key, quotes included
	Value []byte
}

// Key is the member's key, unquoted.
func (m Member) Key() string {
	s, _ := Unquote(m.key)
	return s
}

// is reports whether the member's key is k, without allocating for plain
// ASCII keys (escapes and invalid UTF-8 need unquoting first).
func (m Member) is(k string) bool {
	raw := m.key[1 : len(m.key)-1]
	for _, c := range raw {
		if c == '\\' || c >= utf8.RuneSelf {
			return m.Key() == k
		}
	}
	return string(raw) == k
}

// Valid reports whether b is exactly one JSON value, with optional white
// space around it.
func Valid(b []byte) bool {
	i, ok := skipValue(b, skipSpace(b, 0), 0)
	return ok && skipSpace(b, i) == len(b)
}

// ParseObject parses b, which must be exactly one JSON object, into its members
// in order. ok is false when b is not valid JSON or not an object. Keys
// may repeat; Lookup takes the last, as encoding/json does for maps.
func ParseObject(b []byte) (members []Member, ok bool) {
	return parseObject(b, func(b []byte, i int) (int, bool) { return skipValue(b, i, 1) })
}

// ParseObjectDeep is ParseObject for an object that TooDeep refused: a
// member value nested past the limit is taken whole, its brackets matched
// but its content not checked, so the members around it can be read. Use
// it only to say what a refused message was.
func ParseObjectDeep(b []byte) (members []Member, ok bool) {
	return parseObject(b, skipDeep)
}

// TooDeep reports whether b nests arrays and objects deeper than the
// parser follows (1,000 levels), whether or not it is otherwise valid.
func TooDeep(b []byte) bool {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			end, ok := skipString(b, i)
			if !ok {
				return false
			}
			i = end - 1
		case '[', '{':
			if depth++; depth > maxDepth {
				return true
			}
		case ']', '}':
			depth--
		}
	}
	return false
}

// skipDeep returns the index just past the value at b[i]: an array or
// object by matching its brackets outside strings, without the depth
// limit and without checking what is inside; anything else as skipValue.
func skipDeep(b []byte, i int) (int, bool) {
	if i >= len(b) || (b[i] != '[' && b[i] != '{') {
		return skipValue(b, i, 1)
	}
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			end, ok := skipString(b, i)
			if !ok {
				return i, false
			}
			i = end - 1
		case '[', '{':
			depth++
		case ']', '}':
			if depth--; depth == 0 {
				return i + 1, true
			}
		}
	}
	return i, false
}

func parseObject(b []byte, skip func(b []byte, i int) (int, bool)) (members []Member, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil, skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, false
		}
		end, ok := skipString(b, i)
		if !ok {
			return nil, false
		}
		key := b[i:end]
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		start := skipSpace(b, i+1)
		end, ok = skip(b, start)
		if !ok {
			return nil, false
		}
		if members == nil {
			members = make([]Member, 0, 8)
		}
		members = append(members, Member{key: key, Value: b[start:end]})
		i = skipSpace(b, end)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return members, skipSpace(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}

// Lookup returns the value of the last member named key.
func Lookup(members []Member, key string) ([]byte, bool) {
	for i := len(members) - 1; i >= 0; i-- {
		if members[i].is(key) {
			return members[i].Value, true
		}
	}
	return nil, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{':
		return skipComposite(b, i, depth, '}', true)
	case c == '[':
		return skipComposite(b, i, depth, ']', false)
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return skipNumber(b, i)
	}
	return i, false
}

func skipLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

func skipComposite(b []byte, i, depth int, closer byte, object bool) (int, bool) {
	if depth >= maxDepth {
		return i, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == closer {
		return i + 1, true
	}
	for {
		var ok bool
		if object {
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			if i, ok = skipString(b, i); !ok {
				return i, false
			}
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != ':' {
				return i, false
			}
			i = skipSpace(b, i+1)
		}
		if i, ok = skipValue(b, i, depth+1); !ok {
			return i, false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case closer:
			return i + 1, true
		default:
			return i, false
		}
	}
}

// skipString returns the index just past the string starting at b[i] (a
// quote). Control characters must be escaped; escapes must be valid.
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			i++
			if i >= len(b) {
				return i, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i < 5 {
					return i, false
				}
				for _, h := range b[i+1 : i+5] {
					if hexValue(h) < 0 {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

func skipNumber(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func hexValue(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// Unquote decodes a raw JSON string (quotes included) as encoding/json
// does: escapes resolved, lone surrogates and invalid UTF-8 replaced by
// U+FFFD. ok is false when raw is not a valid JSON string.
func Unquote(raw []byte) (s string, ok bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	simple := true
	for _, c := range body {
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple {
		return string(body), true
	}
	if end, ok := skipString(raw, 0); !ok || end != len(raw) {
		return "", false
	}
	out := make([]byte, 0, len(body))
	for i := 0; i < len(body); {
		c := body[i]
		if c != '\\' {
			if c < utf8.RuneSelf {
				out = append(out, c)
				i++
				continue
			}
			r, size := utf8.DecodeRune(body[i:])
			out = utf8.AppendRune(out, r) // RuneError for invalid bytes
			i += size
			continue
		}
		i++
		switch body[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(body[i+1:])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 < len(body) && body[i+1] == '\\' && body[i+2] == 'u' {
					r2 = hex4(body[i+3:])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out = append(out, body[i])
		}
		i++
	}
	return string(out), true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r = r<<4 | hexValue(c)
	}
	return r
}

// Key reads a raw value that names an object: a string as it is, an
// integer literal as its decimal text ("-0" as "0"). ok is false for
// anything else.
func Key(raw []byte) (string, bool) {
	switch KindOf(raw) {
	case String:
		return Unquote(raw)
	case Number:
		end, ok := skipNumber(raw, 0)
		if !ok || end != len(raw) {
			return "", false
		}
		for _, c := range raw {
			if c == '.' || c == 'e' || c == 'E' {
				return "", false
			}
		}
		if string(raw) == "-0" {
			return "0", true
		}
		return string(raw), true
	}
	return "", false
}

// Compact appends raw without insignificant white space. raw must be valid
// JSON.
func Compact(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			end, _ := skipString(raw, i)
			dst = append(dst, raw[i:end]...)
			i = end - 1
			continue
		}
		dst = append(dst, c)
	}
	return dst
}
