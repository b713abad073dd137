package dynamo

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

func image(t *testing.T, js string) map[string]events.DynamoDBAttributeValue {
	t.Helper()
	var img map[string]events.DynamoDBAttributeValue
	if err := json.Unmarshal([]byte(js), &img); err != nil {
		t.Fatal(err)
	}
	return img
}

// render renders a stream image as ChangeOf does.
func render(img map[string]events.DynamoDBAttributeValue) ([]byte, error) {
	attrs, err := imageAttrs(img)
	if err != nil {
		return nil, err
	}
	return appendObject(nil, attrs)
}

func TestStreamImage(t *testing.T) {
	tests := []struct {
		name, image, want string
	}{
		{"empty", `{}`, `{}`},
		{"table attributes dropped, id first", `{"_stream":{"S":"s"},"_version":{"N":"3"},"b":{"S":"x"},"id":{"S":"i1"},"a":{"N":"1"}}`,
			`{"id":"i1","a":1,"b":"x"}`},
		{"a scoped item's table attributes dropped", `{"_stream":{"S":"notes#alice"},"_binding":{"S":"notes"},"_version":{"N":"1"},"id":{"S":"n1"},"owner":{"S":"alice"}}`,
			`{"id":"n1","owner":"alice"}`},
		{"exact number", `{"n":{"N":"12345678901234567890.123456789"}}`, `{"n":12345678901234567890.123456789}`},
		{"38 digits", `{"n":{"N":"-0.00000000000000000000000000000000000001"},"m":{"N":"99999999999999999999999999999999999999"},"e":{"N":"1E+125"}}`,
			// Exponents come out in plain decimal, as the store reads them back.
			`{"e":1` + strings.Repeat("0", 125) + `,"m":99999999999999999999999999999999999999,"n":-0.00000000000000000000000000000000000001}`},
		{"canonical text", `{"a":{"N":"1.50"},"b":{"N":"-0"},"c":{"N":"2.5e-3"}}`, `{"a":1.5,"b":0,"c":0.0025}`},
		{"scalars", `{"s":{"S":"a\"b\\c\n<é>"},"t":{"BOOL":true},"f":{"BOOL":false},"z":{"NULL":true}}`,
			`{"f":false,"s":"a\"b\\c\n<é>","t":true,"z":null}`},
		{"binary", `{"b":{"B":"AAEqQQ=="},"bs":{"BS":["AAEqQQ==","QSoBAA=="]}}`, `{"b":"AAEqQQ==","bs":["AAEqQQ==","QSoBAA=="]}`},
		{"sets", `{"ss":{"SS":["Giraffe","Zebra"]},"ns":{"NS":["1234","567.8"]},"empty":{"SS":[]}}`,
			`{"empty":[],"ns":[1234,567.8],"ss":["Giraffe","Zebra"]}`},
		{"nested", `{"m":{"M":{"z":{"L":[{"S":"Cookies"},{"N":"3.14159"},{"M":{}}]},"_kept":{"N":"35"}}},"l":{"L":[]}}`,
			`{"l":[],"m":{"_kept":35,"z":["Cookies",3.14159,{}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := render(image(t, tt.image))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("not valid JSON: %s", got)
			}
		})
	}
}

// TestAppendObject_NumberRoundTrip: a number reads back with every digit.
func TestStreamImage_NumberRoundTrip(t *testing.T) {
	const n = "12345678901234567890.123456789"
	got, err := render(image(t, `{"id":{"S":"x"},"n":{"N":"`+n+`"}}`))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(got))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		t.Fatal(err)
	}
	if obj["n"] != json.Number(n) {
		t.Errorf("number: got %v, want %s", obj["n"], n)
	}
}

func TestStreamImage_BadNumber(t *testing.T) {
	for _, n := range []string{"", "+1", ".5", "5.", "01", "1e", "NaN", "Infinity", "0x10", "1 ", "--1"} {
		if got, err := render(image(t, `{"n":{"N":"`+n+`"}}`)); err == nil {
			t.Errorf("number %q: got %s, want an error", n, got)
		}
	}
}

func TestIsJSONNumber(t *testing.T) {
	for _, n := range []string{"0", "-0", "1", "-12.5", "0.001", "1e5", "1E+5", "1e-5", "12345678901234567890.123456789"} {
		if !isJSONNumber(n) || !json.Valid([]byte(n)) {
			t.Errorf("%q: want a JSON number", n)
		}
	}
}

func FuzzIsJSONNumber(f *testing.F) {
	for _, s := range []string{"0", "-1.5e+3", "01", "1.", ".1", "1e", "-", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// A valid JSON value without white space, starting as a number does.
		isNum := s != "" && strings.TrimLeft(s[:1], "-0123456789") == "" && s == strings.TrimSpace(s) && json.Valid([]byte(s))
		if got := isJSONNumber(s); got != isNum {
			t.Errorf("isJSONNumber(%q) = %v, encoding/json says %v", s, got, isNum)
		}
	})
}

// TestChangeOf_Scoped: a scoped item's record is a change of its
// binding's stream, the scope cut off after the first '#', whatever the
// scope holds.
func TestChangeOf_Scoped(t *testing.T) {
	for _, tt := range []struct{ partition, stream string }{
		{"questions", "questions"},
		{"notes#alice", "notes"},
		{"notes#a#b", "notes"},
		{"notes#", "notes"},
	} {
		keys := `{"_stream":{"S":` + quote(tt.partition) + `},"id":{"S":"n1"}}`
		img := `{"_stream":{"S":` + quote(tt.partition) + `},"_binding":{"S":"notes"},"_version":{"N":"2"},"id":{"S":"n1"},"text":{"S":"hi"}}`
		var rec events.DynamoDBEventRecord
		js := `{"eventName":"MODIFY","eventSource":"aws:dynamodb","dynamodb":{"Keys":` + keys + `,"OldImage":` + img + `,"NewImage":` + img +
			`,"SequenceNumber":"1","StreamViewType":"NEW_AND_OLD_IMAGES"}}`
		if err := json.Unmarshal([]byte(js), &rec); err != nil {
			t.Fatal(err)
		}
		ch, err := ChangeOf(&rec)
		if err != nil {
			t.Fatalf("%s: %v", tt.partition, err)
		}
		if ch.Stream != tt.stream || ch.PK != "n1" || ch.Kind != "update" {
			t.Errorf("%s: got stream %q pk %q kind %q, want %q n1 update", tt.partition, ch.Stream, ch.PK, ch.Kind, tt.stream)
		}
		if want := `{"id":"n1","text":"hi"}`; string(ch.Old) != want || string(ch.New) != want {
			t.Errorf("%s: got images %s, %s, want %s", tt.partition, ch.Old, ch.New, want)
		}
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
