package infra

// StreamMapping is what a template sets for the mapping of a table's
// stream to its function: an AWS::Lambda::EventSourceMapping whose
// EventSourceArn is !GetAtt <table>.StreamArn, or a function's SAM event
// of Type DynamoDB whose Stream is. A nil field is a setting the
// template omits, or gives as an intrinsic.
type StreamMapping struct {
	BatchSize                      *int
	MaximumBatchingWindowInSeconds *int
	MaximumRetryAttempts           *int
	BisectBatchOnFunctionError     *bool
}

// StreamMappingOf reads the mapping of table's stream (a logical id);
// ok is false when the template has none.
func StreamMappingOf(t Template, table string) (m StreamMapping, ok bool) {
	p := streamMappingProps(t, table)
	if p == nil {
		return m, false
	}
	intProp := func(key string) *int {
		if n, ok := intOf(p[key]); ok {
			return &n
		}
		return nil
	}
	m.BatchSize = intProp("BatchSize")
	m.MaximumBatchingWindowInSeconds = intProp("MaximumBatchingWindowInSeconds")
	m.MaximumRetryAttempts = intProp("MaximumRetryAttempts")
	if b, ok := boolOf(p["BisectBatchOnFunctionError"]); ok {
		m.BisectBatchOnFunctionError = &b
	}
	return m, true
}

// streamMappingProps finds the properties of the mapping of table's
// stream.
func streamMappingProps(t Template, table string) map[string]any {
	isStream := func(v any) bool {
		res, attr, ok := getAttOf(v)
		return ok && res == table && attr == "StreamArn"
	}
	for _, r := range mapOf(t["Resources"]) {
		res := mapOf(r)
		props := mapOf(res["Properties"])
		switch strOf(res["Type"]) {
		case "AWS::Lambda::EventSourceMapping":
			if isStream(props["EventSourceArn"]) {
				return props
			}
		case "AWS::Serverless::Function":
			for _, e := range mapOf(props["Events"]) {
				ev := mapOf(e)
				eprops := mapOf(ev["Properties"])
				if strOf(ev["Type"]) == "DynamoDB" && isStream(eprops["Stream"]) {
					return eprops
				}
			}
		}
	}
	return nil
}
