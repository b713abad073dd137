package dynamodblocal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/wsbind/wsbind/internal/aws/dynamo"
)

// item is one item as the client wrote it: each attribute value the exact
// DynamoDB JSON the request carried ({"N":"1.50"} stays "1.50").
type item map[string]json.RawMessage

// attr is one attribute value split into its type and its JSON value.
type attr struct {
	typ string
	val json.RawMessage
}

// parseAttr splits a DynamoDB JSON attribute value. An object without a
// member (minidyn's rendering of an empty list or map) has type "".
func parseAttr(raw json.RawMessage) (attr, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return attr{}, err
	}
	if len(m) > 1 {
		return attr{}, fmt.Errorf("attribute value with %d types", len(m))
	}
	for k, v := range m {
		return attr{typ: k, val: v}, nil
	}
	return attr{}, nil
}

// keyString is the identity of an item in a table: its key attributes'
// values, numbers by value (DynamoDB's "1.0" and "1" are one key).
func keyString(t *table, it item) (string, error) {
	var b strings.Builder
	for _, name := range t.keys {
		raw, ok := it[name]
		if !ok {
			return "", fmt.Errorf("the key attribute %s is missing", name)
		}
		a, err := parseAttr(raw)
		if err != nil {
			return "", fmt.Errorf("key attribute %s: %w", name, err)
		}
		var v string
		switch a.typ {
		case "S", "B":
			if err := json.Unmarshal(a.val, &v); err != nil {
				return "", fmt.Errorf("key attribute %s: %w", name, err)
			}
		case "N":
			var text string
			if err := json.Unmarshal(a.val, &text); err != nil {
				return "", fmt.Errorf("key attribute %s: %w", name, err)
			}
			if v, err = dynamo.Canonical(text); err != nil {
				return "", fmt.Errorf("key attribute %s: %w", name, err)
			}
		default:
			return "", fmt.Errorf("key attribute %s has type %q, not S, N or B", name, a.typ)
		}
		// Length-prefixed, so that no two keys run together alike.
		fmt.Fprintf(&b, "%s%d:%s", a.typ, len(v), v)
	}
	return b.String(), nil
}

// keyOf returns the key attributes of an item.
func keyOf(t *table, it item) item {
	k := make(item, len(t.keys))
	for _, name := range t.keys {
		k[name] = it[name]
	}
	return k
}

// checkNumbers returns an error for a number DynamoDB would refuse (more
// than 38 significant digits, out of range, not a number), anywhere in
// the values: minidyn parses them as float64 and would take them.
func checkNumbers(vals map[string]json.RawMessage) error {
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		if err := checkValue(vals[name]); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func checkValue(raw json.RawMessage) error {
	a, err := parseAttr(raw)
	if err != nil {
		return err
	}
	switch a.typ {
	case "N":
		var s string
		if err := json.Unmarshal(a.val, &s); err != nil {
			return err
		}
		_, err := dynamo.Canonical(s)
		return err
	case "NS":
		var ss []string
		if err := json.Unmarshal(a.val, &ss); err != nil {
			return err
		}
		for _, s := range ss {
			if _, err := dynamo.Canonical(s); err != nil {
				return err
			}
		}
	case "L":
		var l []json.RawMessage
		if err := json.Unmarshal(a.val, &l); err != nil {
			return err
		}
		for _, v := range l {
			if err := checkValue(v); err != nil {
				return err
			}
		}
	case "M":
		var m map[string]json.RawMessage
		if err := json.Unmarshal(a.val, &m); err != nil {
			return err
		}
		return checkNumbers(m)
	}
	return nil
}

// sameUpToFloat reports whether minidyn's rendering of a value, mini, is
// what it would make of exact: numbers equal as float64, sets equal as
// sets, and a typeless {} (minidyn's empty list or map) equal to an
// empty container.
func sameUpToFloat(mini, exact json.RawMessage) bool {
	if bytes.Equal(mini, exact) {
		return true
	}
	m, err1 := parseAttr(mini)
	e, err2 := parseAttr(exact)
	if err1 != nil || err2 != nil {
		return false
	}
	if m.typ == "" {
		switch e.typ {
		case "L", "SS", "NS", "BS":
			var l []json.RawMessage
			return json.Unmarshal(e.val, &l) == nil && len(l) == 0
		case "M":
			var o map[string]json.RawMessage
			return json.Unmarshal(e.val, &o) == nil && len(o) == 0
		}
		return false
	}
	if m.typ != e.typ {
		return false
	}
	switch m.typ {
	case "N":
		var a, b string
		return json.Unmarshal(m.val, &a) == nil && json.Unmarshal(e.val, &b) == nil && sameFloat(a, b)
	case "NS":
		var a, b []string
		if json.Unmarshal(m.val, &a) != nil || json.Unmarshal(e.val, &b) != nil || len(a) != len(b) {
			return false
		}
		return sameFloats(a, b)
	case "SS", "BS":
		var a, b []string
		if json.Unmarshal(m.val, &a) != nil || json.Unmarshal(e.val, &b) != nil {
			return false
		}
		slices.Sort(a)
		slices.Sort(b)
		return slices.Equal(a, b)
	case "L":
		var a, b []json.RawMessage
		if json.Unmarshal(m.val, &a) != nil || json.Unmarshal(e.val, &b) != nil || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !sameUpToFloat(a[i], b[i]) {
				return false
			}
		}
		return true
	case "M":
		var a, b map[string]json.RawMessage
		if json.Unmarshal(m.val, &a) != nil || json.Unmarshal(e.val, &b) != nil || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			w, ok := b[k]
			if !ok || !sameUpToFloat(v, w) {
				return false
			}
		}
		return true
	}
	// S, B, BOOL, NULL: minidyn keeps them as they came.
	var a, b any
	return json.Unmarshal(m.val, &a) == nil && json.Unmarshal(e.val, &b) == nil && a == b
}

func sameFloat(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	return err1 == nil && err2 == nil && x == y
}

func sameFloats(a, b []string) bool {
	used := make([]bool, len(b))
	for _, x := range a {
		found := false
		for j, y := range b {
			if !used[j] && sameFloat(x, y) {
				used[j], found = true, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// exactify returns the exact value minidyn's rendering mini stands for:
// the first candidate it is a rendering of, or, for a map, mini with each
// member made exact against the members of the candidates' maps. A value
// nothing explains (the result of arithmetic) stays minidyn's.
func exactify(mini json.RawMessage, candidates ...json.RawMessage) json.RawMessage {
	for _, c := range candidates {
		if c != nil && sameUpToFloat(mini, c) {
			return c
		}
	}
	m, err := parseAttr(mini)
	if err != nil || m.typ != "M" {
		return mini
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(m.val, &members) != nil {
		return mini
	}
	// The candidates' members, by name: a nested SET or a projection of
	// a.b keeps the other members of a as they were.
	sub := map[string][]json.RawMessage{}
	for _, c := range candidates {
		if a, err := parseAttr(c); err == nil && a.typ == "M" {
			var cm map[string]json.RawMessage
			if json.Unmarshal(a.val, &cm) == nil {
				for k, v := range cm {
					sub[k] = append(sub[k], v)
				}
			}
		}
	}
	for k, v := range members {
		members[k] = exactify(v, append(sub[k], candidates...)...)
	}
	b, err := json.Marshal(map[string]map[string]json.RawMessage{"M": members})
	if err != nil {
		return mini
	}
	return b
}

// updateTargets reads an update expression for the top-level attributes
// it touches: removed holds those a REMOVE of a whole attribute deletes
// (minidyn leaves them), changed those any other action may change. ok
// is false when the expression could not be read, and then every
// attribute may have changed.
func updateTargets(expr string, names map[string]string) (removed, changed map[string]bool, ok bool) {
	removed, changed = map[string]bool{}, map[string]bool{}
	clause := ""
	expectPath := false
	depth := 0
	isWord := func(c byte) bool {
		return c == '_' || c == '#' || c == ':' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '(':
			depth++
			i++
		case c == ')':
			depth--
			i++
		case c == ',' && depth == 0:
			expectPath = clause != ""
			i++
		case isWord(c):
			j := i
			for j < len(expr) && isWord(expr[j]) {
				j++
			}
			w := expr[i:j]
			if depth == 0 {
				switch strings.ToUpper(w) {
				case "SET", "REMOVE", "ADD", "DELETE":
					clause, expectPath = strings.ToUpper(w), true
					i = j
					continue
				}
			}
			if expectPath && depth == 0 {
				name := w
				if strings.HasPrefix(w, "#") {
					n, found := names[w]
					if !found {
						return nil, nil, false
					}
					name = n
				}
				nested := j < len(expr) && (expr[j] == '.' || expr[j] == '[')
				if clause == "REMOVE" && !nested {
					removed[name] = true
				} else {
					changed[name] = true
				}
				expectPath = false
			}
			i = j
		default:
			i++
		}
	}
	return removed, changed, clause != ""
}
