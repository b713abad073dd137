package dynamo

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsbind/wsbind/internal/core/jsonv"
)

// DynamoDB's limits on what an item holds.
const (
	// MaxItemSize is DynamoDB's item size limit, attribute names included.
	MaxItemSize = 400 * 1024
	// MaxDepth is how deep DynamoDB lets maps and lists nest.
	MaxDepth = 32
	// maxDigits is a number's precision: significant digits, leading and
	// trailing zeros not counted.
	maxDigits = 38
	// minExp and maxExp bound a number's magnitude as the exponent of its
	// first significant digit: 1E-130 up to 9.99…E+125.
	minExp, maxExp = -130, 125
	// maxPartitionKey and maxSortKey are the key sizes in bytes.
	maxPartitionKey = 2048
	maxSortKey      = 1024
)

var (
	// ErrTooLarge is returned for an item over MaxItemSize.
	ErrTooLarge = errors.New("item larger than DynamoDB's 400 KB limit")
	// ErrInvalid is returned for data DynamoDB cannot hold as given: not a
	// JSON object, a top-level member starting with "_", a number out of
	// DynamoDB's range or precision, nesting deeper than MaxDepth, a key
	// too long or empty, a stream name holding '#'; and for a write to
	// every scope (Part.All), which has no one place to go.
	ErrInvalid = errors.New("data DynamoDB cannot hold")
)

// number is a decimal in the form DynamoDB keeps: sign, significant
// digits (no leading or trailing zeros; empty for zero) and the exponent
// of the last digit, so the value is ±digits × 10^exp.
type number struct {
	neg    bool
	digits string
	exp    int
}

// parseNumber reads a number's decimal text: a JSON number, or what
// DynamoDB sends back, which may also have a "+" sign or exponent form.
// It never goes through float64, so no digit is lost.
func parseNumber(s string) (number, error) {
	var n number
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		n.neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	intPart := s[start:i]
	var frac string
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		frac = s[fs:i]
	}
	if intPart == "" && frac == "" {
		return n, fmt.Errorf("%w: %q is not a number", ErrInvalid, s)
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			eneg = s[i] == '-'
			i++
		}
		es := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == es {
			return n, fmt.Errorf("%w: %q is not a number", ErrInvalid, s)
		}
		// Leading zeros aside, more than 9 digits is far outside any
		// range; cap it so the arithmetic cannot overflow.
		e := strings.TrimLeft(s[es:i], "0")
		if len(e) > 9 {
			e = "999999999"
		}
		if e != "" {
			exp, _ = strconv.Atoi(e)
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return n, fmt.Errorf("%w: %q is not a number", ErrInvalid, s)
	}
	d := strings.TrimLeft(intPart+frac, "0")
	exp -= len(frac)
	t := strings.TrimRight(d, "0")
	exp += len(d) - len(t)
	n.digits = t
	if t == "" {
		return number{}, nil // zero, and -0 is 0
	}
	n.exp = exp
	return n, nil
}

// check reports whether DynamoDB can hold n.
func (n number) check(text string) error {
	if n.digits == "" {
		return nil
	}
	if len(n.digits) > maxDigits {
		return fmt.Errorf("%w: number %s has %d significant digits, DynamoDB keeps %d", ErrInvalid, text, len(n.digits), maxDigits)
	}
	if e := n.exp + len(n.digits) - 1; e > maxExp || e < minExp {
		return fmt.Errorf("%w: number %s is outside DynamoDB's range (magnitude 1E-130 to 9.9999999999999999999999999999999999999E+125)", ErrInvalid, text)
	}
	return nil
}

// String writes n in plain decimal notation, the shortest that reads
// back as the same value: no exponent, no leading zeros, no trailing
// fractional zeros, "0" for zero.
func (n number) String() string {
	if n.digits == "" {
		return "0"
	}
	var b strings.Builder
	if n.neg {
		b.WriteByte('-')
	}
	switch k := len(n.digits); {
	case n.exp >= 0:
		b.WriteString(n.digits)
		b.WriteString(strings.Repeat("0", n.exp))
	case -n.exp < k:
		b.WriteString(n.digits[:k+n.exp])
		b.WriteByte('.')
		b.WriteString(n.digits[k+n.exp:])
	default:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -n.exp-k))
		b.WriteString(n.digits)
	}
	return b.String()
}

// size is DynamoDB's billing size of the number: one byte per two
// significant digits, plus one.
func (n number) size() int { return (len(n.digits)+1)/2 + 1 }

// Canonical returns the text a number reads back as from this store,
// or an error wrapping ErrInvalid when DynamoDB cannot hold it.
func Canonical(text string) (string, error) {
	n, err := parseNumber(text)
	if err == nil {
		err = n.check(text)
	}
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

// encoder turns a JSON object into item attributes and sums the item's
// size as DynamoDB counts it.
type encoder struct {
	dec  *json.Decoder
	size int
}

// encodeObject decodes data, which must be one JSON object, into attrs:
// one attribute per member. Member names must not start with "_" (the
// table's own attributes). A repeated member keeps its last value, as
// the guest's reader does.
func (e *encoder) encodeObject(data []byte, attrs map[string]types.AttributeValue) error {
	e.dec = json.NewDecoder(bytes.NewReader(data))
	e.dec.UseNumber()
	tok, err := e.dec.Token()
	if err != nil {
		return fmt.Errorf("%w: not a JSON object: %v", ErrInvalid, err)
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("%w: not a JSON object", ErrInvalid)
	}
	for e.dec.More() {
		key, err := e.key()
		if err != nil {
			return err
		}
		if strings.HasPrefix(key, "_") {
			return fmt.Errorf("%w: member %q: names starting with _ are the table's", ErrInvalid, key)
		}
		v, err := e.value(1)
		if err != nil {
			return fmt.Errorf("member %q: %w", key, err)
		}
		if old, ok := attrs[key]; ok {
			e.size -= len(key) + valueSize(old)
		}
		attrs[key] = v
		e.size += len(key)
	}
	if _, err := e.dec.Token(); err != nil { // '}'
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if _, err := e.dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON object", ErrInvalid)
	}
	return nil
}

func (e *encoder) key() (string, error) {
	tok, err := e.dec.Token()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return tok.(string), nil // a key is always a string after a valid '{' or ','
}

// value reads the next JSON value as an attribute value, at nesting
// depth d (1 for an object's members).
func (e *encoder) value(d int) (types.AttributeValue, error) {
	tok, err := e.dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch t := tok.(type) {
	case nil:
		e.size++
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case bool:
		e.size++
		return &types.AttributeValueMemberBOOL{Value: t}, nil
	case string:
		e.size += len(t)
		return &types.AttributeValueMemberS{Value: t}, nil
	case json.Number:
		n, err := parseNumber(string(t))
		if err == nil {
			err = n.check(string(t))
		}
		if err != nil {
			return nil, err
		}
		e.size += n.size()
		return &types.AttributeValueMemberN{Value: n.String()}, nil
	case json.Delim:
		if d >= MaxDepth {
			return nil, fmt.Errorf("%w: nested deeper than DynamoDB's %d levels", ErrInvalid, MaxDepth)
		}
		e.size += 3
		if t == '[' {
			l := []types.AttributeValue{}
			for e.dec.More() {
				v, err := e.value(d + 1)
				if err != nil {
					return nil, fmt.Errorf("[%d]: %w", len(l), err)
				}
				l = append(l, v)
			}
			_, err := e.dec.Token() // ']'
			return &types.AttributeValueMemberL{Value: l}, err
		}
		m := map[string]types.AttributeValue{}
		for e.dec.More() {
			k, err := e.key()
			if err != nil {
				return nil, err
			}
			v, err := e.value(d + 1)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", k, err)
			}
			if old, ok := m[k]; ok {
				e.size -= len(k) + valueSize(old)
			}
			m[k] = v
			e.size += len(k)
		}
		_, err := e.dec.Token() // '}'
		return &types.AttributeValueMemberM{Value: m}, err
	}
	return nil, fmt.Errorf("%w: unexpected token %v", ErrInvalid, tok)
}

// valueSize is an attribute value's size as DynamoDB counts it (used
// only to take back a repeated member's size, so the sum stays exact).
func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		n, _ := parseNumber(v.Value)
		return n.size()
	case *types.AttributeValueMemberL:
		s := 3
		for _, e := range v.Value {
			s += valueSize(e)
		}
		return s
	case *types.AttributeValueMemberM:
		s := 3
		for k, e := range v.Value {
			s += len(k) + valueSize(e)
		}
		return s
	}
	return 1
}

// appendObject appends an item as the stored JSON object: one member per
// attribute not starting with "_", "id" first and the others in byte
// order of their names. Reads and stream records (ChangeOf) both render
// through it, so a read and a push of the same item are the same bytes.
func appendObject(dst []byte, item map[string]types.AttributeValue) ([]byte, error) {
	names := make([]string, 0, len(item))
	for k := range item {
		if !strings.HasPrefix(k, "_") && k != attrID {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	if _, ok := item[attrID]; ok {
		names = slices.Insert(names, 0, attrID)
	}
	dst = append(dst, '{')
	for i, k := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonv.AppendString(dst, k)
		dst = append(dst, ':')
		var err error
		if dst, err = appendValue(dst, item[k]); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	return append(dst, '}'), nil
}

// appendValue appends an attribute value as JSON. Sets (which only other
// writers make) become arrays and binary becomes base64 text.
func appendValue(dst []byte, v types.AttributeValue) ([]byte, error) {
	var err error
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		if !utf8.ValidString(v.Value) {
			return nil, errors.New("string is not valid UTF-8")
		}
		return jsonv.AppendString(dst, v.Value), nil
	case *types.AttributeValueMemberN:
		return appendNumber(dst, v.Value)
	case *types.AttributeValueMemberBOOL:
		return strconv.AppendBool(dst, v.Value), nil
	case *types.AttributeValueMemberNULL:
		return append(dst, "null"...), nil
	case *types.AttributeValueMemberB:
		return appendBase64(dst, v.Value), nil
	case *types.AttributeValueMemberM:
		keys := make([]string, 0, len(v.Value))
		for k := range v.Value {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonv.AppendString(dst, k)
			dst = append(dst, ':')
			if dst, err = appendValue(dst, v.Value[k]); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
		}
		return append(dst, '}'), nil
	case *types.AttributeValueMemberL:
		dst = append(dst, '[')
		for i, e := range v.Value {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendValue(dst, e); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return append(dst, ']'), nil
	case *types.AttributeValueMemberSS:
		dst = append(dst, '[')
		for i, s := range v.Value {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonv.AppendString(dst, s)
		}
		return append(dst, ']'), nil
	case *types.AttributeValueMemberNS:
		dst = append(dst, '[')
		for i, s := range v.Value {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = appendNumber(dst, s); err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return append(dst, ']'), nil
	case *types.AttributeValueMemberBS:
		dst = append(dst, '[')
		for i, b := range v.Value {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendBase64(dst, b)
		}
		return append(dst, ']'), nil
	}
	return nil, fmt.Errorf("unknown attribute type %T", v)
}

// appendNumber appends DynamoDB's text of a number in the store's one
// notation (number.String), whichever way the server wrote it.
func appendNumber(dst []byte, s string) ([]byte, error) {
	n, err := parseNumber(s)
	if err != nil {
		return nil, err
	}
	return append(dst, n.String()...), nil
}

func appendBase64(dst []byte, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}
