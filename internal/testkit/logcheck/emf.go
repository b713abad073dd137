// Package logcheck checks what wsbind's functions log: that every line is
// a JSON object, that each invocation's line has the fields
// docs/operations.md lists, and that every CloudWatch embedded metric
// format (EMF) document among them keeps the specification's rules
// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
// CloudWatch drops a malformed EMF document without a word in the log
// group (only the AWS/Logs namespace counts the failures), so the checks
// are made before deployment, on the lines the emulator and the
// bootstrap print.
package logcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// The EMF specification's limits.
const (
	MaxDimensionKeys = 30   // keys in one DimensionSet
	MaxMetrics       = 100  // MetricDefinitions in one MetricDirective
	MaxValues        = 100  // values in one metric member's array
	MaxDimensionText = 1024 // characters of a dimension's value
	MaxNamespace     = 255  // characters of a namespace (CloudWatch's limit)
)

// Units are the units a MetricDefinition may name (CloudWatch's
// StandardUnit).
var Units = []string{
	"Seconds", "Microseconds", "Milliseconds",
	"Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
	"Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
	"Percent", "Count",
	"Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
	"Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
	"Count/Second", "None",
}

// IsEMF reports whether a decoded line carries an EMF document: a root
// member _aws.
func IsEMF(root map[string]json.RawMessage) bool {
	_, ok := root["_aws"]
	return ok
}

// CheckEMF checks one log line as an EMF document: a JSON object and
// nothing else, whose _aws member holds a Timestamp (milliseconds since
// the epoch) and CloudWatchMetrics, an array of MetricDirectives; each
// of those a Namespace, Dimensions (an array of DimensionSets, each an
// array of at most 30 dimension keys) and Metrics (at most 100
// MetricDefinitions: a Name, an optional Unit and an optional
// StorageResolution of 1 or 60), and no other member. Every dimension
// key must be a root member whose value is a string, every metric name
// a root member whose value is a number or an array of at most 100
// numbers.
func CheckEMF(line []byte) error {
	root, err := decodeObject(line)
	if err != nil {
		return err
	}
	return checkEMF(root)
}

func checkEMF(root map[string]json.RawMessage) error {
	rawAWS, ok := root["_aws"]
	if !ok {
		return errors.New("no _aws member")
	}
	aws, err := object(rawAWS)
	if err != nil {
		return fmt.Errorf("_aws: %w", err)
	}
	for k := range aws {
		switch k {
		case "Timestamp", "CloudWatchMetrics", "LogGroupName", "LogStreamName":
		default:
			return fmt.Errorf("_aws: member %q not in the specification", k)
		}
	}
	ts, ok := aws["Timestamp"]
	if !ok {
		return errors.New("_aws: no Timestamp")
	}
	ms, ok := number(ts)
	if !ok {
		return fmt.Errorf("_aws.Timestamp: %s is not a number", ts)
	}
	if n, err := ms.Int64(); err != nil || n <= 0 {
		return fmt.Errorf("_aws.Timestamp: %s is not a positive integer of milliseconds", ts)
	}
	rawCWM, ok := aws["CloudWatchMetrics"]
	if !ok {
		return errors.New("_aws: no CloudWatchMetrics")
	}
	directives, ok := array(rawCWM)
	if !ok {
		return fmt.Errorf("_aws.CloudWatchMetrics: not an array: %s", rawCWM)
	}
	if len(directives) == 0 {
		return errors.New("_aws.CloudWatchMetrics: empty")
	}
	for i, raw := range directives {
		if err := checkDirective(root, raw); err != nil {
			return fmt.Errorf("_aws.CloudWatchMetrics[%d]: %w", i, err)
		}
	}
	return nil
}

// checkDirective checks one MetricDirective against the root.
func checkDirective(root map[string]json.RawMessage, raw json.RawMessage) error {
	d, err := object(raw)
	if err != nil {
		return err
	}
	for k := range d {
		if k != "Namespace" && k != "Dimensions" && k != "Metrics" {
			return fmt.Errorf("member %q not in the specification", k)
		}
	}
	rawNS, ok := d["Namespace"]
	if !ok {
		return errors.New("no Namespace")
	}
	ns, ok := str(rawNS)
	if !ok {
		return fmt.Errorf("member Namespace: %s is not a string", rawNS)
	}
	if ns == "" || len(ns) > MaxNamespace {
		return fmt.Errorf("member Namespace: %q is not 1 to %d characters", ns, MaxNamespace)
	}
	rawDims, ok := d["Dimensions"]
	if !ok {
		return errors.New("no Dimensions")
	}
	sets, ok := array(rawDims)
	if !ok {
		return fmt.Errorf("member Dimensions: not an array: %s", rawDims)
	}
	for i, rawSet := range sets {
		keys, ok := array(rawSet)
		set := make([]string, 0, len(keys))
		for _, raw := range keys {
			k, isStr := str(raw)
			ok = ok && isStr
			set = append(set, k)
		}
		if !ok {
			return fmt.Errorf("member Dimensions[%d]: not an array of strings: %s", i, rawSet)
		}
		if len(set) > MaxDimensionKeys {
			return fmt.Errorf("member Dimensions[%d]: %d keys, more than %d", i, len(set), MaxDimensionKeys)
		}
		for _, k := range set {
			v, ok := root[k]
			if !ok {
				return fmt.Errorf("member Dimensions[%d]: %q is not a root member", i, k)
			}
			s, ok := str(v)
			if !ok {
				return fmt.Errorf("dimension %q: %s is not a string", k, v)
			}
			if len([]rune(s)) > MaxDimensionText || len(bytes.TrimSpace([]byte(s))) == 0 {
				return fmt.Errorf("dimension %q: %q is not 1 to %d characters, not all spaces", k, s, MaxDimensionText)
			}
		}
	}
	rawMetrics, ok := d["Metrics"]
	if !ok {
		return errors.New("no Metrics")
	}
	defs, ok := array(rawMetrics)
	if !ok {
		return fmt.Errorf("member Metrics: not an array: %s", rawMetrics)
	}
	if len(defs) > MaxMetrics {
		return fmt.Errorf("member Metrics: %d definitions, more than %d", len(defs), MaxMetrics)
	}
	for i, raw := range defs {
		if _, err := checkDefinition(root, raw); err != nil {
			return fmt.Errorf("member Metrics[%d]: %w", i, err)
		}
	}
	return nil
}

// checkDefinition checks one MetricDefinition and its root member, and
// returns its name.
func checkDefinition(root map[string]json.RawMessage, raw json.RawMessage) (string, error) {
	m, err := object(raw)
	if err != nil {
		return "", err
	}
	for k := range m {
		if k != "Name" && k != "Unit" && k != "StorageResolution" {
			return "", fmt.Errorf("member %q not in the specification", k)
		}
	}
	rawName, ok := m["Name"]
	if !ok {
		return "", errors.New("no Name")
	}
	name, ok := str(rawName)
	if !ok || name == "" {
		return "", fmt.Errorf("member Name: %s is not a non-empty string", rawName)
	}
	if rawUnit, ok := m["Unit"]; ok {
		if unit, ok := str(rawUnit); !ok || !slices.Contains(Units, unit) {
			return "", fmt.Errorf("%s: Unit %s is not one of CloudWatch's", name, rawUnit)
		}
	}
	if rawRes, ok := m["StorageResolution"]; ok {
		if res, ok := number(rawRes); !ok || (res != "1" && res != "60") {
			return "", fmt.Errorf("%s: StorageResolution %s is not 1 or 60", name, rawRes)
		}
	}
	v, ok := root[name]
	if !ok {
		return "", fmt.Errorf("metric %q is not a root member", name)
	}
	if _, ok := number(v); ok {
		return name, nil
	}
	ns, ok := array(v)
	for _, e := range ns {
		_, isNum := number(e)
		ok = ok && isNum
	}
	if !ok {
		return "", fmt.Errorf("metric %q: %s is neither a number nor an array of numbers", name, v)
	}
	if len(ns) == 0 || len(ns) > MaxValues {
		return "", fmt.Errorf("metric %q: %d values, want 1 to %d", name, len(ns), MaxValues)
	}
	return name, nil
}

// decodeObject decodes a line holding one JSON object and nothing else.
func decodeObject(line []byte) (map[string]json.RawMessage, error) {
	line = bytes.TrimRight(line, "\r\n")
	o, err := object(line)
	if err != nil {
		return nil, fmt.Errorf("not one JSON object: %w", err)
	}
	return o, nil
}

// object decodes a JSON object, refusing anything after it and repeated
// members (a consumer might read either value).
func object(raw []byte) (map[string]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, fmt.Errorf("%.40q is not an object", raw)
	}
	var o map[string]json.RawMessage
	if err := strict(raw, &o); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return nil, err
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k := tok.(string)
		if seen[k] {
			return nil, fmt.Errorf("member %q repeated", k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// strict decodes raw, a JSON value and nothing after it, into v, numbers
// as json.Number.
func strict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("data after the value")
	}
	if _, err := dec.Token(); err == nil {
		return errors.New("data after the value")
	}
	return nil
}

// str reads a JSON string (not null, not a number).
func str(raw []byte) (string, bool) {
	raw = bytes.TrimSpace(raw)
	var s string
	if len(raw) == 0 || raw[0] != '"' || strict(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// number reads a JSON number (not a string holding one, not null).
func number(raw []byte) (json.Number, bool) {
	raw = bytes.TrimSpace(raw)
	var n json.Number
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) || strict(raw, &n) != nil {
		return "", false
	}
	return n, true
}

// array reads a JSON array's elements (not null).
func array(raw []byte) ([]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	var a []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || strict(raw, &a) != nil {
		return nil, false
	}
	return a, true
}
