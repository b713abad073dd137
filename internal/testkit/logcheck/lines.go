package logcheck

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Fields are the fields an invocation's line must have, by function;
// docs/operations.md documents them. A field may be null where the
// request had none (a frame with no stream, no request_id).
var Fields = map[string][]string{
	"route":        {"function", "aws_request_id", "api_request_id", "conn", "event", "stream", "action", "request_id", "status", "duration_us"},
	"connect":      {"function", "aws_request_id", "api_request_id", "conn", "event", "status", "duration_us"},
	"authorizer":   {"function", "aws_request_id", "api_request_id", "conn", "status", "duration_us"},
	"streamfanout": {"function", "aws_request_id", "records", "failed_records", "duration_us"},
	"push":         {"function", "aws_request_id", "duration_us"},
}

// PushFields are what a fan-out line adds when its Poster counts its
// posts (the management API's does).
var PushFields = []string{"pushes_posted", "pushes_gone", "pushes_throttled", "pushes_failed"}

// numeric are the fields whose value must be a number.
var numeric = []string{"status", "duration_us", "records", "failed_records", "lag_ms", "init_us",
	"pushes_posted", "pushes_gone", "pushes_throttled", "pushes_failed"}

// Options say what a set of lines must show beyond the per-line rules.
type Options struct {
	// Pushes requires PushFields on every fan-out line.
	Pushes bool
	// EMF requires every invocation line to carry an EMF document.
	EMF bool
}

// Line is one checked line.
type Line struct {
	// Function is the function whose invocation the line reports; ""
	// for any other line.
	Function string
	// EMF tells whether the line carries an EMF document.
	EMF bool
	// Fields are the line's members, as JSON.
	Fields map[string]json.RawMessage
}

// Check checks one log line: a JSON object with time, level and msg; an
// invocation's line ("wsbind: <function>", with a function field naming
// the same) with its function's Fields, numbers where numbers belong;
// an EMF document (a root _aws member) as CheckEMF does.
func Check(line []byte, o Options) (Line, error) {
	root, err := decodeObject(line)
	if err != nil {
		return Line{}, err
	}
	l := Line{Fields: root}
	for _, k := range []string{"time", "level", "msg"} {
		if _, ok := str(root[k]); !ok {
			return l, fmt.Errorf("no %s string", k)
		}
	}
	msg, _ := str(root["msg"])
	fn, _ := str(root["function"])
	if want, ok := Fields[fn]; ok && msg == "wsbind: "+fn {
		l.Function = fn
		if o.Pushes && (fn == "streamfanout" || fn == "push") {
			want = append(slices.Clone(want), PushFields...)
		}
		if _, failed := root["err"]; failed {
			// A failed invocation (an event the function does not
			// serve) may not have read its event's fields.
			want = []string{"function", "duration_us"}
		}
		for _, k := range want {
			if _, ok := root[k]; !ok {
				return l, fmt.Errorf("%s line without %s", fn, k)
			}
		}
		for _, k := range []string{"aws_request_id", "api_request_id", "conn", "event"} {
			if v, ok := root[k]; ok {
				if s, isStr := str(v); !isStr || s == "" {
					return l, fmt.Errorf("%s: %s is not a non-empty string", k, v)
				}
			}
		}
		if _, failed := root["err"]; o.EMF && !failed && !IsEMF(root) {
			return l, fmt.Errorf("%s line without its metrics (_aws)", fn)
		}
	}
	for _, k := range numeric {
		if v, ok := root[k]; ok {
			if _, isNum := number(v); !isNum {
				return l, fmt.Errorf("%s: %s is not a number", k, v)
			}
		}
	}
	if IsEMF(root) {
		l.EMF = true
		if err := checkEMF(root); err != nil {
			return l, fmt.Errorf("EMF: %w", err)
		}
	}
	return l, nil
}

// Report is what CheckAll found.
type Report struct {
	Lines int
	// Invocations counts the invocation lines by function.
	Invocations map[string]int
	// EMF counts the lines carrying an EMF document.
	EMF int
	// Bad holds the first problems, with their lines.
	Bad []string
	// BadLines counts the lines with a problem.
	BadLines int
}

// CheckAll checks every line r holds, as Check does.
func CheckAll(r io.Reader, o Options) (Report, error) {
	rep := Report{Invocations: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		rep.Lines++
		l, err := Check(line, o)
		if err != nil {
			rep.BadLines++
			if len(rep.Bad) < 10 {
				rep.Bad = append(rep.Bad, fmt.Sprintf("%v: %.600s", err, line))
			}
			continue
		}
		if l.Function != "" {
			rep.Invocations[l.Function]++
		}
		if l.EMF {
			rep.EMF++
		}
	}
	if err := sc.Err(); err != nil {
		return rep, err
	}
	if rep.BadLines > 0 {
		return rep, errors.New(strings.Join(rep.Bad, "\n"))
	}
	return rep, nil
}
