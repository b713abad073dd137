package logcheck

import (
	"strings"
	"testing"
)

const routeLine = `{"time":"2026-12-06T00:00:00Z","level":"INFO","msg":"wsbind: route","function":"route","aws_request_id":"r1","api_request_id":"a1","conn":"c1","event":"MESSAGE","stream":null,"action":"list","request_id":7,"status":200,"duration_us":0.3}`

func TestCheck_lines(t *testing.T) {
	l, err := Check([]byte(routeLine), Options{})
	if err != nil || l.Function != "route" || l.EMF {
		t.Fatalf("route line: %+v, %v", l, err)
	}
	// Another message is not an invocation's line: no fields required.
	if l, err := Check([]byte(`{"time":"t","level":"WARN","msg":"wsbind: fan-out failed","function":"route"}`), Options{}); err != nil || l.Function != "" {
		t.Fatalf("other line: %+v, %v", l, err)
	}
	for _, tc := range []struct{ name, line, want string }{
		{"text", `time=2026 level=INFO msg=hello`, "not one JSON object"},
		{"no msg", `{"time":"t","level":"INFO"}`, "no msg"},
		{"no conn", strings.Replace(routeLine, `"conn":"c1",`, "", 1), "without conn"},
		{"empty conn", strings.Replace(routeLine, `"conn":"c1"`, `"conn":""`, 1), "conn"},
		{"no request_id", strings.Replace(routeLine, `"request_id":7,`, "", 1), "without request_id"},
		{"no aws_request_id", strings.Replace(routeLine, `"aws_request_id":"r1",`, "", 1), "without aws_request_id"},
		{"status a string", strings.Replace(routeLine, `"status":200`, `"status":"200"`, 1), "status"},
		{"no duration", strings.Replace(routeLine, `,"duration_us":0.3`, "", 1), "without duration_us"},
		{"bad EMF", strings.Replace(routeLine, `}`, `,"_aws":{"Timestamp":1}}`, 1), "EMF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Check([]byte(tc.line), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if _, err := Check([]byte(routeLine), Options{EMF: true}); err == nil || !strings.Contains(err.Error(), "without its metrics") {
		t.Errorf("EMF required: got %v", err)
	}
	failed := `{"time":"t","level":"ERROR","msg":"wsbind: route","function":"route","aws_request_id":"r","duration_us":0.1,"err":"route: event type \"\" not served"}`
	if _, err := Check([]byte(failed), Options{EMF: true}); err != nil {
		t.Errorf("failed invocation: %v", err)
	}
	fan := `{"time":"t","level":"INFO","msg":"wsbind: streamfanout","function":"streamfanout","aws_request_id":"r","records":1,"failed_records":0,"duration_us":1}`
	if _, err := Check([]byte(fan), Options{}); err != nil {
		t.Errorf("fan-out line: %v", err)
	}
	if _, err := Check([]byte(fan), Options{Pushes: true}); err == nil || !strings.Contains(err.Error(), "pushes_posted") {
		t.Errorf("pushes required: got %v", err)
	}
}

func TestCheckAll(t *testing.T) {
	in := routeLine + "\n\nnot json\n" + routeLine + "\n"
	rep, err := CheckAll(strings.NewReader(in), Options{})
	if err == nil || rep.Lines != 3 || rep.BadLines != 1 || rep.Invocations["route"] != 2 || !strings.Contains(err.Error(), "not json") {
		t.Errorf("got %+v, %v", rep, err)
	}
}
