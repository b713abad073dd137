package jsonv_test

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/wsbind/wsbind/internal/core/jsonv"
)

// encoding/json is the oracle: the hand-written parser must agree with it.
var samples = []string{
	``, ` `, `{`, `}`, `{}`, ` { } `, `[]`, `[1,]`, `[1 2]`, `null`, `nul`, `true`, `truex`, `false`,
	`0`, `-0`, `01`, `-`, `1.`, `1.5`, `1e5`, `1E+5`, `1e`, `-1.5e-3`, `.5`, `+1`,
	`"a"`, `"\u00e9\n\t\"\\\/"`, `"\x"`, `"\u12"`, `"\ud83d\ude00"`, `"\ud83d"`, `"\ud83dx"`, `"\ude00\ud83d"`,
	"\"tab\there\"", "\"\xff\"", `"unterminated`,
	`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`, `{"a":1,"a":2}`, `{"a" 1}`, `{"a":1,}`, `{1:2}`,
	`{"a":1} x`, `[[[[[]]]]]`, `{"k":"v"}{"k":"v"}`,
}

func TestValid_AgreesWithEncodingJSON(t *testing.T) {
	for _, s := range samples {
		if got, want := jsonv.Valid([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("Valid(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestParseObject_AgreesWithEncodingJSON(t *testing.T) {
	for _, s := range samples {
		members, ok := jsonv.ParseObject([]byte(s))
		var want map[string]json.RawMessage
		wantOK := json.Unmarshal([]byte(s), &want) == nil && want != nil
		if ok != wantOK {
			t.Errorf("ParseObject(%q) ok = %v, want %v", s, ok, wantOK)
			continue
		}
		for k, v := range want {
			got, found := jsonv.Lookup(members, k)
			if !found || !bytes.Equal(got, v) {
				t.Errorf("ParseObject(%q)[%q] = %q, want %q", s, k, got, v)
			}
		}
	}
}

func TestUnquote_AgreesWithEncodingJSON(t *testing.T) {
	for _, s := range samples {
		got, ok := jsonv.Unquote([]byte(s))
		var want string
		wantOK := json.Unmarshal([]byte(s), &want) == nil && len(s) > 0 && s[0] == '"'
		if ok != wantOK || got != want {
			t.Errorf("Unquote(%q) = %q, %v; want %q, %v", s, got, ok, want, wantOK)
		}
	}
}

func TestAppendString_RoundTrips(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\" back\\ nl\n tab\t ctl\x01 del\x7f", "é ☃ 😀", "bad \xff utf8", "<html>&"} {
		out := jsonv.AppendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("AppendString(%q) = %s: %v", s, out, err)
		}
		want := string(bytes.ToValidUTF8([]byte(s), []byte("\uFFFD")))
		if back != want {
			t.Errorf("AppendString(%q) round-trips to %q, want %q", s, back, want)
		}
	}
}

func TestAppendValue_MatchesEncodingJSON(t *testing.T) {
	values := []any{
		nil, true, "s", 1, int8(-2), int64(math.MaxInt64), uint64(math.MaxUint64), 1.5, 1e21, 1e-7, 123456789.0, float32(0.1), math.Copysign(0, -1),
		[]any{1, "a", nil}, []string{"x"}, []int{1, 2}, map[string]any{"b": 1, "a": []any{true}}, map[string]int{"z": 1, "y": 2},
		json.RawMessage(`{"a": [1, 2]}`), []string(nil), map[string]any(nil),
	}
	for _, v := range values {
		got, ok := jsonv.AppendValue(nil, v)
		want, err := json.Marshal(v)
		if !ok || err != nil || !bytes.Equal(got, want) {
			t.Errorf("AppendValue(%#v) = %s, %v; encoding/json gives %s, %v", v, got, ok, want, err)
		}
	}
	for _, v := range []any{math.NaN(), math.Inf(1), struct{}{}, []any{make(chan int)}} {
		if _, ok := jsonv.AppendValue(nil, v); ok {
			t.Errorf("AppendValue(%#v) ok, want a refusal", v)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range samples {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := jsonv.Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, want %v", b, got, want)
		}
		members, ok := jsonv.ParseObject(b)
		var want map[string]json.RawMessage
		if wantOK := json.Unmarshal(b, &want) == nil && want != nil; ok != wantOK {
			t.Fatalf("ParseObject(%q) ok = %v, want %v", b, ok, wantOK)
		}
		for k, v := range want {
			if got, _ := jsonv.Lookup(members, k); !bytes.Equal(got, v) {
				t.Fatalf("ParseObject(%q)[%q] = %q, want %q", b, k, got, v)
			}
		}
		var s string
		if json.Unmarshal(b, &s) == nil && len(b) > 1 && b[0] == '"' && b[len(b)-1] == '"' {
			if got, ok := jsonv.Unquote(b); !ok || got != s {
				t.Fatalf("Unquote(%q) = %q, %v; want %q", b, got, ok, s)
			}
		}
		if jsonv.Valid(b) {
			var buf bytes.Buffer
			if json.Compact(&buf, b) == nil && !bytes.Equal(jsonv.Compact(nil, b), buf.Bytes()) {
				t.Fatalf("Compact(%q) = %q, want %q", b, jsonv.Compact(nil, b), buf.Bytes())
			}
		}
	})
}

func TestTooDeep(t *testing.T) {
	deep := strings.Repeat("[", 1001) + strings.Repeat("]", 1001)
	limit := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{limit, false},
		{deep, true},
		{`{"a":"` + strings.Repeat("[", 20000) + `"}`, false}, // brackets in a string do not count
		{`{"a":"\"` + strings.Repeat("{", 20000) + `"}`, false},
		{`{"a":` + deep + `}`, true},
	} {
		if got := jsonv.TooDeep([]byte(tt.in)); got != tt.want {
			t.Errorf("TooDeep(%.40q...) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if !jsonv.Valid([]byte(limit)) || jsonv.Valid([]byte(deep)) {
		t.Error("Valid must accept 1,000 levels and refuse 1,001")
	}
}

func TestParseObjectDeep(t *testing.T) {
	deep := strings.Repeat("[", 1001) + `"]}"` + strings.Repeat("]", 1001)
	in := `{"stream":"s","payload":` + deep + `,"id":7}`
	if _, ok := jsonv.ParseObject([]byte(in)); ok {
		t.Fatal("ParseObject took a value nested 1,001 deep")
	}
	m, ok := jsonv.ParseObjectDeep([]byte(in))
	if !ok {
		t.Fatal("ParseObjectDeep: not ok")
	}
	if v, _ := jsonv.Lookup(m, "id"); string(v) != "7" {
		t.Errorf("id = %s, want 7", v)
	}
	if v, _ := jsonv.Lookup(m, "payload"); string(v) != deep {
		t.Errorf("payload is %d bytes, want the whole deep value (%d)", len(v), len(deep))
	}
	for _, bad := range []string{`{"a":[[[}`, `{"a":"x}`, `{"a":1`} {
		if _, ok := jsonv.ParseObjectDeep([]byte(bad)); ok {
			t.Errorf("ParseObjectDeep(%s) = ok, want not", bad)
		}
	}
}
