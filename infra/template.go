package infra

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Template is a parsed template: maps, lists and scalars as YAML decodes
// them, with every short-form intrinsic rewritten in its long form
// (!Ref X is {"Ref": "X"}, !GetAtt A.B is {"Fn::GetAtt": ["A", "B"]},
// !Sub s is {"Fn::Sub": s}, ...), so a check reads one form.
type Template map[string]any

// ParseFile reads and parses a template file.
func ParseFile(path string) (Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse parses a YAML template.
func Parse(data []byte) (Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("empty template")
	}
	v, err := convert(doc.Content[0])
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template is a %T, not a mapping", v)
	}
	return Template(m), nil
}

// shortTags maps each short-form tag to its long-form key.
var shortTags = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!GetAtt": "Fn::GetAtt", "!Sub": "Fn::Sub", "!Join": "Fn::Join", "!Select": "Fn::Select",
	"!Split": "Fn::Split", "!If": "Fn::If", "!Equals": "Fn::Equals", "!Not": "Fn::Not",
	"!And": "Fn::And", "!Or": "Fn::Or", "!FindInMap": "Fn::FindInMap", "!Base64": "Fn::Base64",
	"!Cidr": "Fn::Cidr", "!GetAZs": "Fn::GetAZs", "!ImportValue": "Fn::ImportValue",
	"!Transform": "Fn::Transform", "!ToJsonString": "Fn::ToJsonString", "!Length": "Fn::Length",
}

func convert(n *yaml.Node) (any, error) {
	if n.Kind == yaml.AliasNode {
		return convert(n.Alias)
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		key, ok := shortTags[n.Tag]
		if !ok {
			return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
		}
		var arg any
		if n.Kind == yaml.ScalarNode {
			arg = n.Value // a tagged scalar is a string, whatever it looks like
			if key == "Fn::GetAtt" {
				res, attr, ok := strings.Cut(n.Value, ".")
				if !ok {
					return nil, fmt.Errorf("line %d: !GetAtt %q: want Resource.Attribute", n.Line, n.Value)
				}
				arg = []any{res, attr}
			}
		} else {
			c := *n
			c.Tag = ""
			var err error
			if arg, err = convert(&c); err != nil {
				return nil, err
			}
		}
		return map[string]any{key: arg}, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", n.Content[i].Line, k)
			}
			v, err := convert(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := convert(c)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		var v any
		err := n.Decode(&v)
		return v, err
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
}

// Accessors of the decoded tree: the zero value when v is not of the kind.

func mapOf(v any) map[string]any { m, _ := v.(map[string]any); return m }
func listOf(v any) []any         { l, _ := v.([]any); return l }
func strOf(v any) string         { s, _ := v.(string); return s }

// intOf reads an integer that YAML decoded as int or a template wrote as
// a string.
func intOf(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case string:
		var n int
		if _, err := fmt.Sscanf(v, "%d", &n); err == nil && fmt.Sprint(n) == v {
			return n, true
		}
	}
	return 0, false
}

// boolOf reads a boolean written as YAML's or as "true"/"false".
func boolOf(v any) (value, ok bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		switch strings.ToLower(v) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

// strings of a string or a list of strings.
func stringsOf(v any) []string {
	if s, ok := v.(string); ok {
		return []string{s}
	}
	var out []string
	for _, e := range listOf(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// intrinsic returns the function and argument of a long-form intrinsic
// ({"Ref": x}, {"Fn::Sub": x}, {"Condition": x}), or ok false.
func intrinsic(v any) (fn string, arg any, ok bool) {
	m := mapOf(v)
	if len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
			return k, a, true
		}
	}
	return "", nil, false
}

// refOf is the target of {"Ref": X}, else "".
func refOf(v any) string {
	if fn, arg, ok := intrinsic(v); ok && fn == "Ref" {
		return strOf(arg)
	}
	return ""
}

// getAttOf is the resource and attribute of a Fn::GetAtt, in its list or
// "A.B" form.
func getAttOf(v any) (res, attr string, ok bool) {
	fn, arg, ok := intrinsic(v)
	if !ok || fn != "Fn::GetAtt" {
		return "", "", false
	}
	if s, isStr := arg.(string); isStr {
		res, attr, ok = strings.Cut(s, ".")
		return res, attr, ok
	}
	l := listOf(arg)
	if len(l) != 2 {
		return "", "", false
	}
	return strOf(l[0]), strOf(l[1]), strOf(l[0]) != "" && strOf(l[1]) != ""
}

// subOf is the template string and variables of a Fn::Sub.
func subOf(v any) (s string, vars map[string]any, ok bool) {
	fn, arg, ok := intrinsic(v)
	if !ok || fn != "Fn::Sub" {
		return "", nil, false
	}
	if s, isStr := arg.(string); isStr {
		return s, nil, true
	}
	l := listOf(arg)
	if len(l) != 2 {
		return "", nil, false
	}
	return strOf(l[0]), mapOf(l[1]), true
}

// subVar matches a ${Name} of a Fn::Sub string; ${!Literal} is not one.
var subVar = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// subNames lists the ${...} names of a Fn::Sub string, in order.
func subNames(s string) []string {
	var names []string
	for _, m := range subVar.FindAllStringSubmatch(s, -1) {
		names = append(names, strings.TrimSpace(m[1]))
	}
	return names
}

// names a value refers to as a function's target: Ref X, GetAtt X.Arn, or
// a Fn::Sub naming ${X} or ${X.Arn}.
func refersTo(v any, name string) bool {
	if refOf(v) == name {
		return true
	}
	if res, _, ok := getAttOf(v); ok && res == name {
		return true
	}
	if s, _, ok := subOf(v); ok {
		return slices.ContainsFunc(subNames(s), func(n string) bool { return n == name || strings.HasPrefix(n, name+".") })
	}
	return false
}
