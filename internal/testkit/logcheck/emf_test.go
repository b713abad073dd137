package logcheck

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// valid is a well-formed EMF document: two directives, a dimension set
// of two keys, a metric of one value and one of an array.
const valid = `{"_aws":{"Timestamp":1733443200000,"CloudWatchMetrics":[` +
	`{"Namespace":"wsbind","Dimensions":[["Function"],["Function","Action"]],"Metrics":[{"Name":"Messages","Unit":"Count"},{"Name":"Latency","Unit":"Milliseconds","StorageResolution":60}]},` +
	`{"Namespace":"wsbind","Dimensions":[["Function"]],"Metrics":[{"Name":"FanoutLag"}]}]},` +
	`"Function":"route","Action":"list","Messages":1,"Latency":0.5,"FanoutLag":[1,2,3],"conn":"abc"}`

func TestCheckEMF_valid(t *testing.T) {
	if err := CheckEMF([]byte(valid)); err != nil {
		t.Fatal(err)
	}
	// No dimensions at all is allowed: an empty DimensionSet.
	if err := CheckEMF([]byte(`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[[]],"Metrics":[{"Name":"M"}]}]},"M":-2.5e3}`)); err != nil {
		t.Fatal(err)
	}
}

// edit returns valid with its JSON changed by f.
func edit(t *testing.T, f func(root map[string]any)) string {
	t.Helper()
	var root map[string]any
	if err := json.Unmarshal([]byte(valid), &root); err != nil {
		t.Fatal(err)
	}
	f(root)
	b, err := json.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func aws(root map[string]any) map[string]any { return root["_aws"].(map[string]any) }
func directive(root map[string]any, i int) map[string]any {
	return aws(root)["CloudWatchMetrics"].([]any)[i].(map[string]any)
}
func definition(root map[string]any, i, j int) map[string]any {
	return directive(root, i)["Metrics"].([]any)[j].(map[string]any)
}

// TestCheckEMF_rejects: each kind of malformed document is refused, with
// an error that names what is wrong.
func TestCheckEMF_rejects(t *testing.T) {
	many := func(n int, f func(i int) any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"not JSON", `{"_aws":`, "not one JSON object"},
		{"not an object", `[1,2]`, "not an object"},
		{"data after the object", valid + ` {}`, "after the value"},
		{"repeated member", `{"_aws":{},"_aws":{}}`, "repeated"},
		{"no _aws", `{"Messages":1}`, "no _aws"},
		{"_aws not an object", `{"_aws":[]}`, "_aws"},
		{"no Timestamp", edit(t, func(r map[string]any) { delete(aws(r), "Timestamp") }), "no Timestamp"},
		{"Timestamp a string", edit(t, func(r map[string]any) { aws(r)["Timestamp"] = "1733443200000" }), "Timestamp"},
		{"Timestamp not integer", edit(t, func(r map[string]any) { aws(r)["Timestamp"] = 1.5 }), "Timestamp"},
		{"Timestamp zero", edit(t, func(r map[string]any) { aws(r)["Timestamp"] = 0 }), "Timestamp"},
		{"unknown _aws member", edit(t, func(r map[string]any) { aws(r)["Metrics"] = 1 }), "not in the specification"},
		{"no CloudWatchMetrics", edit(t, func(r map[string]any) { delete(aws(r), "CloudWatchMetrics") }), "no CloudWatchMetrics"},
		{"CloudWatchMetrics an object", edit(t, func(r map[string]any) { aws(r)["CloudWatchMetrics"] = map[string]any{} }), "not an array"},
		{"CloudWatchMetrics null", edit(t, func(r map[string]any) { aws(r)["CloudWatchMetrics"] = nil }), "not an array"},
		{"CloudWatchMetrics empty", edit(t, func(r map[string]any) { aws(r)["CloudWatchMetrics"] = []any{} }), "empty"},
		{"directive not an object", edit(t, func(r map[string]any) { aws(r)["CloudWatchMetrics"] = []any{"x"} }), "not an object"},
		{"no Namespace", edit(t, func(r map[string]any) { delete(directive(r, 0), "Namespace") }), "no Namespace"},
		{"Namespace empty", edit(t, func(r map[string]any) { directive(r, 0)["Namespace"] = "" }), "Namespace"},
		{"Namespace a number", edit(t, func(r map[string]any) { directive(r, 0)["Namespace"] = 7 }), "Namespace"},
		{"Namespace too long", edit(t, func(r map[string]any) { directive(r, 0)["Namespace"] = strings.Repeat("n", 256) }), "Namespace"},
		{"unknown directive member", edit(t, func(r map[string]any) { directive(r, 1)["Unit"] = "Count" }), "not in the specification"},
		{"no Dimensions", edit(t, func(r map[string]any) { delete(directive(r, 0), "Dimensions") }), "no Dimensions"},
		{"Dimensions of strings", edit(t, func(r map[string]any) { directive(r, 0)["Dimensions"] = []any{"Function"} }), "not an array of strings"},
		{"dimension key a number", edit(t, func(r map[string]any) { directive(r, 0)["Dimensions"] = []any{[]any{1}} }), "not an array of strings"},
		{"31 dimension keys", edit(t, func(r map[string]any) {
			directive(r, 0)["Dimensions"] = []any{many(31, func(i int) any { k := fmt.Sprintf("D%d", i); r[k] = "v"; return k })}
		}), "more than 30"},
		{"dimension not a root member", edit(t, func(r map[string]any) { delete(r, "Action") }), `"Action" is not a root member`},
		{"dimension value a number", edit(t, func(r map[string]any) { r["Function"] = 3 }), "not a string"},
		{"dimension value empty", edit(t, func(r map[string]any) { r["Action"] = " " }), "not all spaces"},
		{"dimension value too long", edit(t, func(r map[string]any) { r["Action"] = strings.Repeat("a", 1025) }), "1024"},
		{"no Metrics", edit(t, func(r map[string]any) { delete(directive(r, 1), "Metrics") }), "no Metrics"},
		{"Metrics an object", edit(t, func(r map[string]any) { directive(r, 1)["Metrics"] = map[string]any{"Name": "FanoutLag"} }), "not an array"},
		{"101 metrics", edit(t, func(r map[string]any) {
			directive(r, 1)["Metrics"] = many(101, func(i int) any { k := fmt.Sprintf("M%d", i); r[k] = 1; return map[string]any{"Name": k} })
		}), "more than 100"},
		{"metric without Name", edit(t, func(r map[string]any) { delete(definition(r, 0, 0), "Name") }), "no Name"},
		{"metric Name empty", edit(t, func(r map[string]any) { definition(r, 0, 0)["Name"] = "" }), "Name"},
		{"unknown Unit", edit(t, func(r map[string]any) { definition(r, 0, 0)["Unit"] = "ms" }), "Unit"},
		{"StorageResolution 5", edit(t, func(r map[string]any) { definition(r, 0, 1)["StorageResolution"] = 5 }), "StorageResolution"},
		{"unknown definition member", edit(t, func(r map[string]any) { definition(r, 0, 0)["Value"] = 1 }), "not in the specification"},
		{"metric not a root member", edit(t, func(r map[string]any) { delete(r, "Latency") }), `"Latency" is not a root member`},
		{"metric a string", edit(t, func(r map[string]any) { r["Messages"] = "1" }), "neither a number"},
		{"metric null", edit(t, func(r map[string]any) { r["Messages"] = nil }), "neither a number"},
		{"metric array of strings", edit(t, func(r map[string]any) { r["FanoutLag"] = []any{1, "2"} }), "neither a number"},
		{"metric array empty", edit(t, func(r map[string]any) { r["FanoutLag"] = []any{} }), "values"},
		{"metric array of 101", edit(t, func(r map[string]any) { r["FanoutLag"] = many(101, func(i int) any { return i }) }), "101 values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckEMF([]byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted %s", tc.doc)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}
