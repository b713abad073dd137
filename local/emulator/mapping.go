package emulator

import (
	"strconv"
	"strings"
	"time"

	"github.com/wsbind/wsbind/infra"
	"github.com/wsbind/wsbind/internal/emulated/streams"
)

// itemsTable is the items table's logical id in the template.
const itemsTable = "ItemsTable"

// mappingConfig is the stream mapping's configuration as the template
// declares it for the items table's stream: an
// AWS::Lambda::EventSourceMapping whose EventSourceArn is
// !GetAtt ItemsTable.StreamArn, or a function's SAM event of Type
// DynamoDB whose Stream is. BatchSize, MaximumBatchingWindowInSeconds,
// MaximumRetryAttempts and BisectBatchOnFunctionError are read; a setting
// the template omits, or gives as an intrinsic, keeps streams' default.
// MaximumRetryAttempts 0 (no retries) keeps it too: streams.Config
// cannot say it.
func mappingConfig(t infra.Template) streams.Config {
	var cfg streams.Config
	p := mappingProps(t)
	if p == nil {
		return cfg
	}
	if n, ok := intProp(p["BatchSize"]); ok && n > 0 {
		cfg.BatchSize = n
	}
	if n, ok := intProp(p["MaximumBatchingWindowInSeconds"]); ok && n > 0 {
		cfg.MaximumBatchingWindow = time.Duration(n) * time.Second
	}
	if n, ok := intProp(p["MaximumRetryAttempts"]); ok && n != 0 {
		cfg.MaximumRetryAttempts = n // -1: forever, as streams reads it too
	}
	if b, ok := boolProp(p["BisectBatchOnFunctionError"]); ok {
		cfg.BisectBatchOnFunctionError = b
	}
	return cfg
}

// mappingProps finds the properties of the items stream's mapping.
func mappingProps(t infra.Template) map[string]any {
	resources, _ := t["Resources"].(map[string]any)
	for _, r := range resources {
		res, _ := r.(map[string]any)
		props, _ := res["Properties"].(map[string]any)
		switch res["Type"] {
		case "AWS::Lambda::EventSourceMapping":
			if isItemsStream(props["EventSourceArn"]) {
				return props
			}
		case "AWS::Serverless::Function":
			events, _ := props["Events"].(map[string]any)
			for _, e := range events {
				ev, _ := e.(map[string]any)
				eprops, _ := ev["Properties"].(map[string]any)
				if ev["Type"] == "DynamoDB" && isItemsStream(eprops["Stream"]) {
					return eprops
				}
			}
		}
	}
	return nil
}

// isItemsStream reports whether v is Fn::GetAtt ItemsTable.StreamArn,
// in its list or its "A.B" form.
func isItemsStream(v any) bool {
	m, _ := v.(map[string]any)
	switch arg := m["Fn::GetAtt"].(type) {
	case string:
		return arg == itemsTable+".StreamArn"
	case []any:
		return len(arg) == 2 && arg[0] == itemsTable && arg[1] == "StreamArn"
	}
	return false
}

// intProp reads an integer YAML decoded as int, or written as a string.
func intProp(v any) (int, bool) {
	switch v := v.(type) {
	case int:
		return v, true
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(v))
		return n, err == nil
	}
	return 0, false
}

// boolProp reads a boolean written as YAML's or as "true"/"false".
func boolProp(v any) (value, ok bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		return b, err == nil
	}
	return false, false
}
