package infra

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
)

// The operational checks: what an operator needs of a deployed stack
// (logs that expire, throttling, alarms, secrets out of the environment,
// what deletion keeps) rather than what the functions need to work.

// logRetentionDays are CloudWatch Logs' allowed retentions.
var logRetentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// checkRetentionOf: a log group's RetentionInDays is one of CloudWatch's
// values, or a parameter allowing only those; without it logs are kept,
// and billed, forever.
func (c *checker) checkRetentionOf(check, group string) {
	v := c.props(group)["RetentionInDays"]
	if n, ok := intOf(v); ok {
		if !slices.Contains(logRetentionDays, n) {
			c.add(check, group, "RetentionInDays %d is none of CloudWatch's values %v", n, logRetentionDays)
		}
		return
	}
	p := refOf(v)
	if c.params[p] == nil {
		c.add(check, group, "no RetentionInDays (a number or a parameter): its logs would be kept forever")
		return
	}
	allowed := listOf(c.params[p]["AllowedValues"])
	if len(allowed) == 0 {
		c.add(check, p, "no AllowedValues: CloudWatch accepts only %v", logRetentionDays)
	}
	for _, a := range allowed {
		if n, ok := intOf(a); !ok || !slices.Contains(logRetentionDays, n) {
			c.add(check, p, "AllowedValues has %v, none of CloudWatch's retentions", a)
		}
	}
	if d, _ := intOf(c.params[p]["Default"]); !slices.Contains(logRetentionDays, d) {
		c.add(check, p, "Default %v is none of CloudWatch's retentions", c.params[p]["Default"])
	}
}

// checkLogGroups: each function names its own log group
// (LoggingConfig.LogGroup), which therefore exists before the function
// first logs, so that Lambda never makes an unmanaged group of its own.
func (c *checker) checkLogGroups() {
	owner := map[string]string{}
	for _, id := range c.ofType("AWS::Serverless::Function") {
		g := refOf(mapOf(c.fnProp(id, "LoggingConfig"))["LogGroup"])
		if !c.isType(g, "AWS::Logs::LogGroup") {
			c.add(CheckLogGroup, id, "LoggingConfig.LogGroup is not a Ref to an AWS::Logs::LogGroup of the template: Lambda would make /aws/lambda/<name> itself, with no retention")
			continue
		}
		if o := owner[g]; o != "" {
			c.add(CheckLogGroup, id, "log group %s is also %s's", g, o)
		}
		owner[g] = id
		if cond := strOf(c.res[g]["Condition"]); cond != "" {
			c.add(CheckLogGroup, g, "Condition %s: the function's log group must always exist", cond)
		}
		c.checkRetentionOf(CheckLogGroup, g)
	}
}

// accessLogFields are the $context variables an access log line must
// carry to be traced back to a connection and a message.
var accessLogFields = []string{"$context.requestId", "$context.connectionId", "$context.eventType", "$context.routeKey",
	"$context.status", "$context.integrationLatency"}

// checkStageSettings: the stage throttles, and logs every request to a
// group with retention once API Gateway's account role is in place.
func (c *checker) checkStageSettings() {
	if c.stage == "" {
		return // reported already
	}
	p := c.props(c.stage)
	rs := mapOf(p["DefaultRouteSettings"])
	for _, k := range []string{"ThrottlingRateLimit", "ThrottlingBurstLimit"} {
		v := rs[k]
		if _, ok := intOf(v); !ok && c.params[refOf(v)] == nil {
			c.add(CheckThrottle, c.stage, "DefaultRouteSettings.%s is neither a number nor a parameter: clients alone could use up the account's requests per second, the fan-out's posts included", k)
		}
	}
	settings := p["AccessLogSettings"]
	if fn, arg, ok := intrinsic(settings); ok && fn == "Fn::If" {
		l := listOf(arg)
		settings = nil
		for _, b := range l[1:] {
			if refOf(b) != "AWS::NoValue" {
				settings = b
			}
		}
	}
	al := mapOf(settings)
	if al == nil {
		c.add(CheckAccessLog, c.stage, "no AccessLogSettings")
		return
	}
	g, attr, _ := getAttOf(al["DestinationArn"])
	if attr != "Arn" || !c.isType(g, "AWS::Logs::LogGroup") {
		c.add(CheckAccessLog, c.stage, "AccessLogSettings.DestinationArn is not the Arn of an AWS::Logs::LogGroup of the template")
	} else {
		c.checkRetentionOf(CheckAccessLog, g)
	}
	format := strOf(al["Format"])
	var line map[string]any
	if err := json.Unmarshal([]byte(format), &line); err != nil {
		c.add(CheckAccessLog, c.stage, "AccessLogSettings.Format is not a JSON object: %v", err)
	}
	for _, f := range accessLogFields {
		if !strings.Contains(format, `"`+f+`"`) {
			c.add(CheckAccessLog, c.stage, "AccessLogSettings.Format lacks %s", f)
		}
	}
	// Access logs need the account's CloudWatch role set first: when the
	// template sets it, the stage must wait for it.
	for _, acct := range c.ofType("AWS::ApiGateway::Account") {
		if !c.waitsFor(c.stage, acct) {
			c.add(CheckAccessLog, c.stage, "does not wait for %s (DependsOn, or through a resource it DependsOn): the stage's access logs fail until the account's CloudWatch role is set", acct)
		}
		if _, _, ok := getAttOf(c.props(acct)["CloudWatchRoleArn"]); !ok {
			c.add(CheckAccessLog, acct, "CloudWatchRoleArn is not a role of the template")
		}
	}
}

// waitsFor reports whether id depends on target: DependsOn it, or
// DependsOn a resource that names it.
func (c *checker) waitsFor(id, target string) bool {
	for _, d := range stringsOf(c.res[id]["DependsOn"]) {
		if d == target || mentions(c.res[d], target) {
			return true
		}
	}
	return false
}

// mentions reports whether a Ref or GetAtt within v names target.
func mentions(v any, target string) bool {
	if refOf(v) == target {
		return true
	}
	if r, _, ok := getAttOf(v); ok && r == target {
		return true
	}
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			if mentions(e, target) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if mentions(e, target) {
				return true
			}
		}
	}
	return false
}

// alarm is an alarm's metric and the resource its dimension names.
type alarm struct{ id, namespace, metric, resource string }

// checkAlarms: every alarm watches a resource of the template of the
// metric's kind and notifies; and the set the stack needs is there.
func (c *checker) checkAlarms() {
	var alarms []alarm
	for _, id := range c.ofType("AWS::CloudWatch::Alarm") {
		p := c.props(id)
		a := alarm{id: id, namespace: strOf(p["Namespace"]), metric: strOf(p["MetricName"])}
		dims := map[string]any{}
		for _, d := range listOf(p["Dimensions"]) {
			dims[strOf(mapOf(d)["Name"])] = mapOf(d)["Value"]
		}
		switch a.namespace {
		case "AWS/Lambda":
			a.resource = refOf(dims["FunctionName"])
			if !c.isType(a.resource, "AWS::Serverless::Function") {
				c.add(CheckAlarm, id, "dimension FunctionName is not a Ref to a function of the template")
			}
		case "AWS/SQS":
			q, attr, _ := getAttOf(dims["QueueName"])
			if attr != "QueueName" || !c.isType(q, "AWS::SQS::Queue") {
				c.add(CheckAlarm, id, "dimension QueueName is not the QueueName of a queue of the template")
			}
			a.resource = q
		case "AWS/ApiGateway":
			a.resource = refOf(dims["ApiId"])
			if a.resource != c.api || refOf(dims["Stage"]) != c.stage {
				c.add(CheckAlarm, id, "dimensions ApiId and Stage are not Refs to %s and %s", c.api, c.stage)
			}
		default:
			c.add(CheckAlarm, id, "namespace %q is none this check knows", a.namespace)
		}
		if p["AlarmActions"] == nil {
			c.add(CheckAlarm, id, "no AlarmActions: it would change state and tell no one")
		}
		alarms = append(alarms, a)
	}
	has := func(ns, metric, res string) bool {
		return slices.ContainsFunc(alarms, func(a alarm) bool { return a.namespace == ns && a.metric == metric && a.resource == res })
	}
	for _, fn := range c.ofType("AWS::Serverless::Function") {
		for _, m := range []string{"Errors", "Throttles"} {
			if !has("AWS/Lambda", m, fn) {
				c.add(CheckAlarm, fn, "no alarm on its %s", m)
			}
		}
	}
	if fan := c.fnByHandler[hStreamFanout]; fan != "" {
		if !has("AWS/Lambda", "IteratorAge", fan) {
			c.add(CheckAlarm, fan, "no alarm on its IteratorAge: a fan-out falling behind the stream would go unseen")
		}
		for _, a := range alarms {
			if a.metric == "IteratorAge" && c.params[refOf(c.props(a.id)["Threshold"])] == nil {
				c.add(CheckAlarm, a.id, "Threshold is not a parameter: how late is too late is the operator's call")
			}
		}
	}
	if c.dlq != "" && !has("AWS/SQS", "ApproximateNumberOfMessagesVisible", c.dlq) {
		c.add(CheckAlarm, c.dlq, "no alarm on ApproximateNumberOfMessagesVisible: a batch given up on would go unseen")
	}
	if c.api != "" && !has("AWS/ApiGateway", "ExecutionError", c.api) {
		c.add(CheckAlarm, c.api, "no alarm on ExecutionError")
	}
}

// checkSecrets: no function's environment holds a secret: neither the
// HS256 secret itself nor any NoEcho parameter. Lambda shows environment
// variables in plain text to anyone allowed to read the function's
// configuration.
func (c *checker) checkSecrets() {
	for _, id := range c.ofType("AWS::Serverless::Function") {
		env := c.fnEnv(id)
		for _, k := range slices.Sorted(maps.Keys(env)) {
			if k == "WSBIND_AUTH_HS256_SECRET" {
				c.add(CheckSecret, id, "%s in the environment: name an SSM SecureString in WSBIND_AUTH_HS256_SECRET_PARAM instead", k)
			}
			for _, p := range slices.Sorted(maps.Keys(c.params)) {
				if noEcho, _ := boolOf(c.params[p]["NoEcho"]); noEcho && mentionsParam(env[k], p) {
					c.add(CheckSecret, id, "%s holds the NoEcho parameter %s: a secret in plain text in the function's configuration", k, p)
				}
			}
		}
	}
	if c.fnByHandler[hAuthorizer] != "" && c.secretParam == "" {
		c.add(CheckSecret, c.fnByHandler[hAuthorizer], "no WSBIND_AUTH_HS256_SECRET_PARAM naming the secret's SSM parameter")
	}
}

// mentionsParam reports whether v refers to parameter p, by Ref or in a
// Fn::Sub.
func mentionsParam(v any, p string) bool {
	if mentions(v, p) {
		return true
	}
	if s, _, ok := subOf(v); ok && slices.Contains(subNames(s), p) {
		return true
	}
	if m := mapOf(v); m != nil {
		for _, e := range m {
			if mentionsParam(e, p) {
				return true
			}
		}
	}
	for _, e := range listOf(v) {
		if mentionsParam(e, p) {
			return true
		}
	}
	return false
}

// retentionTypes are the resources whose deletion loses something: each
// must say what deletion and replacement do.
var retentionTypes = []string{"AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Logs::LogGroup", "AWS::ApiGateway::Account"}

// checkRetention: every stateful resource states its DeletionPolicy and
// UpdateReplacePolicy; the items table, the data, is kept, and
// recoverable to a point in time; the failure queue keeps messages as
// long as SQS allows; the account's logging role outlives the stack.
func (c *checker) checkRetention() {
	for _, typ := range retentionTypes {
		for _, id := range c.ofType(typ) {
			for _, k := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
				if strOf(c.res[id][k]) == "" {
					c.add(CheckRetention, id, "no %s: say what deleting the stack (or replacing the resource) does to it", k)
				}
			}
		}
	}
	if items := c.tables[tItems]; items != "" {
		for _, k := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
			if v := strOf(c.res[items][k]); v != "" && v != "Retain" && v != "RetainExceptOnCreate" {
				c.add(CheckRetention, items, "%s %s: the items are the application's data; keep them (Retain)", k, v)
			}
		}
		pitr := mapOf(c.props(items)["PointInTimeRecoverySpecification"])["PointInTimeRecoveryEnabled"]
		if _, ok := boolOf(pitr); !ok && c.params[refOf(pitr)] == nil {
			c.add(CheckRetention, items, "no PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled (true, or a parameter)")
		}
	}
	if c.dlq != "" {
		if n, _ := intOf(c.props(c.dlq)["MessageRetentionPeriod"]); n != 1209600 {
			c.add(CheckRetention, c.dlq, "MessageRetentionPeriod %v, want 1209600 (14 days, SQS's longest): a failed batch is evidence", c.props(c.dlq)["MessageRetentionPeriod"])
		}
	}
	for _, acct := range c.ofType("AWS::ApiGateway::Account") {
		role, _, _ := getAttOf(c.props(acct)["CloudWatchRoleArn"])
		for _, id := range []string{acct, role} {
			if c.res[id] != nil && strOf(c.res[id]["DeletionPolicy"]) != "Retain" {
				c.add(CheckRetention, id, "DeletionPolicy is not Retain: deleting the stack would leave the region's API Gateway logging naming a role that no longer exists")
			}
		}
	}
}

// checkTracing: X-Ray is the Tracing parameter's choice on every
// function (SAM adds the X-Ray write policy to the role it makes).
func (c *checker) checkTracing() {
	for _, id := range c.ofType("AWS::Serverless::Function") {
		v := c.fnProp(id, "Tracing")
		p := refOf(v)
		if c.params[p] == nil {
			c.add(CheckTracing, id, "Tracing is not a parameter")
			continue
		}
		allowed := stringsOf(c.params[p]["AllowedValues"])
		slices.Sort(allowed)
		if !slices.Equal(allowed, []string{"Active", "PassThrough"}) {
			c.add(CheckTracing, p, "AllowedValues %v, want Active and PassThrough", allowed)
		}
	}
}
