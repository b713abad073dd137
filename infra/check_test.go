package infra

import (
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wsbind/wsbind/internal/aws/lambdahost"
)

// handlers are the Handler values the bootstrap accepts.
var handlers = []string{lambdahost.NameConnect, lambdahost.NameRoute, lambdahost.NameStreamFanout, lambdahost.NameAuthorizer, lambdahost.NamePush}

func load(t *testing.T) (Template, Config) {
	t.Helper()
	tpl, err := ParseFile("template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile("sam.mk")
	if err != nil {
		t.Fatal(err)
	}
	return tpl, Config{Handlers: handlers, Make: ParseSAMMakefile(mk), TemplateDir: ".", RepoRoot: ".."}
}

func TestCheck_Template(t *testing.T) {
	tpl, cfg := load(t)
	for _, p := range Check(tpl, cfg) {
		t.Error(p)
	}
}

// TestSAMMakefile: the parse sees every target and handler, so that the
// build checks compare against sam.mk and not against an empty reading.
func TestParseSAMMakefile(t *testing.T) {
	_, cfg := load(t)
	mk := cfg.Make
	for _, id := range []string{"Connect", "Route", "StreamFanout", "Authorizer", "Push"} {
		if !mk.Targets[id] {
			t.Errorf("no target build-%s in %v", id, mk.Targets)
		}
		if mk.Handlers[id] == "" {
			t.Errorf("no sam_handler_%s", id)
		}
	}
	if mk.DefaultArch == "" {
		t.Error("no SAM_ARCH default")
	}
	got := ParseSAMMakefile([]byte("a b: c\n\tbuild-Nope: x\nbuild-One \\\n  build-Two: dep\n# build-Three:\nV := build-Four:\n"))
	if want := map[string]bool{"One": true, "Two": true}; !reflect.DeepEqual(got.Targets, want) {
		t.Errorf("targets %v, want %v", got.Targets, want)
	}
}

// TestMakefile_IncludesSAM: `sam build` runs the top-level Makefile
// (CodeUri is the repository root), so it must include sam.mk.
func TestMakefile_IncludesSAM(t *testing.T) {
	data, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^-?include\s+infra/sam\.mk\s*$`).Match(data) {
		t.Error("the top-level Makefile does not `include infra/sam.mk`: sam build would find no build-<LogicalId> targets")
	}
}

func TestParse_ShortAndLongForms(t *testing.T) {
	short, err := Parse([]byte(`
a: !Ref X
b: !GetAtt R.Arn
c: !Sub "${R.Arn}/x"
d: !Sub ["${V}", {V: !Ref X}]
e: !If [Cond, !Join ["/", [a, !Select [0, !Split [",", "p,q"]]]], !Ref AWS::NoValue]
f: !Not [!Equals [!Ref X, ""]]
g: !Condition C
h: !Ref "123"
`))
	if err != nil {
		t.Fatal(err)
	}
	long, err := Parse([]byte(`
a: {Ref: X}
b: {Fn::GetAtt: [R, Arn]}
c: {Fn::Sub: "${R.Arn}/x"}
d: {Fn::Sub: ["${V}", {V: {Ref: X}}]}
e: {Fn::If: [Cond, {Fn::Join: ["/", [a, {Fn::Select: [0, {Fn::Split: [",", "p,q"]}]}]]}, {Ref: AWS::NoValue}]}
f: {Fn::Not: [{Fn::Equals: [{Ref: X}, ""]}]}
g: {Condition: C}
h: {Ref: "123"}
`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(short, long) {
		t.Errorf("short forms\n%v\nlong forms\n%v", short, long)
	}
	if _, err := Parse([]byte("a: !Reff X\n")); err == nil {
		t.Error("unknown tag: no error")
	}
	if _, err := Parse([]byte("a: !GetAtt NoDot\n")); err == nil {
		t.Error("!GetAtt without an attribute: no error")
	}
}

func TestArnLike(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		want       bool
	}{
		{"*/$connect", "STAGE/$connect", true},
		{"*/$connect", "STAGE/$disconnect", false},
		{"*", "authorizers/A", true},
		{"STAGE/*", "STAGE/$default", true},
		{"authorizers/AUTHZ", "authorizers/AUTHZ", true},
		{"authorizers/?UTHZ", "authorizers/AUTHZ", true},
		{"authorizers/AUTHZ", "authorizers/AUTHZX", false},
	} {
		if got := arnLike(tt.pattern, tt.s); got != tt.want {
			t.Errorf("arnLike(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// Mutation helpers: they reach into the parsed template and fail the
// test when the template no longer has what they expect.

func res(t *testing.T, tpl Template, id string) map[string]any {
	t.Helper()
	r := mapOf(mapOf(tpl["Resources"])[id])
	if r == nil {
		t.Fatalf("no resource %s", id)
	}
	return r
}

func props(t *testing.T, tpl Template, id string) map[string]any {
	t.Helper()
	return mapOf(res(t, tpl, id)["Properties"])
}

func env(t *testing.T, tpl Template, id string) map[string]any {
	t.Helper()
	return mapOf(mapOf(props(t, tpl, id)["Environment"])["Variables"])
}

func stmt(t *testing.T, tpl Template, fn, sid string) map[string]any {
	t.Helper()
	for _, s := range listOf(mapOf(listOf(props(t, tpl, fn)["Policies"])[0])["Statement"]) {
		if strOf(mapOf(s)["Sid"]) == sid {
			return mapOf(s)
		}
	}
	t.Fatalf("%s has no statement %s", fn, sid)
	return nil
}

func dropStmt(t *testing.T, tpl Template, fn, sid string) {
	t.Helper()
	doc := mapOf(listOf(props(t, tpl, fn)["Policies"])[0])
	before := listOf(doc["Statement"])
	doc["Statement"] = slices.DeleteFunc(slices.Clone(before), func(s any) bool { return strOf(mapOf(s)["Sid"]) == sid })
	if len(listOf(doc["Statement"])) == len(before) {
		t.Fatalf("%s has no statement %s", fn, sid)
	}
}

// condStmt is the statement Sid of fn's first policy that is granted
// under a Fn::If.
func condStmt(t *testing.T, tpl Template, fn, sid string) map[string]any {
	t.Helper()
	for _, s := range listOf(mapOf(listOf(props(t, tpl, fn)["Policies"])[0])["Statement"]) {
		if f, arg, ok := intrinsic(s); ok && f == "Fn::If" && strOf(mapOf(listOf(arg)[1])["Sid"]) == sid {
			return mapOf(listOf(arg)[1])
		}
	}
	t.Fatalf("%s has no conditional statement %s", fn, sid)
	return nil
}

func dropCondStmt(t *testing.T, tpl Template, fn, sid string) {
	t.Helper()
	condStmt(t, tpl, fn, sid)
	doc := mapOf(listOf(props(t, tpl, fn)["Policies"])[0])
	doc["Statement"] = slices.DeleteFunc(slices.Clone(listOf(doc["Statement"])), func(s any) bool {
		_, arg, ok := intrinsic(s)
		return ok && strOf(mapOf(listOf(arg)[1])["Sid"]) == sid
	})
}

// accessLog is the stage's access log settings (the Fn::If's true branch).
func accessLog(t *testing.T, tpl Template) map[string]any {
	t.Helper()
	_, arg, ok := intrinsic(props(t, tpl, "Stage")["AccessLogSettings"])
	if !ok {
		t.Fatal("Stage.AccessLogSettings is not a Fn::If")
	}
	return mapOf(listOf(arg)[1])
}

func del(t *testing.T, m map[string]any, key string) {
	t.Helper()
	if _, ok := m[key]; !ok {
		t.Fatalf("no %s to delete", key)
	}
	delete(m, key)
}

func ref(x string) map[string]any       { return map[string]any{"Ref": x} }
func sub(s string) map[string]any       { return map[string]any{"Fn::Sub": s} }
func getAtt(r, a string) map[string]any { return map[string]any{"Fn::GetAtt": []any{r, a}} }
func apiArn(rest string) map[string]any {
	return sub("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:" + rest)
}

// TestCheck_Mutations: each check catches what it claims. Each case breaks
// the real template in one way and expects its own problem.
func TestCheck_Mutations(t *testing.T) {
	for _, tt := range []struct {
		name       string
		mutate     func(*testing.T, Template)
		mutateMake func(*SAMMakefile)
		check      string
		want       string // in the problem's text
	}{
		// references
		{name: "broken Ref", check: CheckRef, want: `Ref "Apii"`,
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "ConnectRoute")["ApiId"] = ref("Apii") }},
		{name: "broken GetAtt inside Sub", check: CheckRef, want: "${Rout.Arn}",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "RouteIntegration")["IntegrationUri"] = sub("arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Rout.Arn}/invocations")
			}},
		{name: "broken GetAtt", check: CheckRef, want: `GetAtt "FanoutDLQueue"`,
			mutate: func(t *testing.T, tpl Template) {
				stmt(t, tpl, "StreamFanout", "ParkFailedBatches")["Resource"] = getAtt("FanoutDLQueue", "Arn")
			}},
		{name: "unknown condition", check: CheckRef, want: `condition "Named"`,
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "ItemsTable")["TableName"] = map[string]any{"Fn::If": []any{"Named", "x", ref("AWS::NoValue")}}
			}},
		{name: "unknown pseudo parameter", check: CheckRef, want: "${AWS::Regoin}",
			mutate: func(t *testing.T, tpl Template) {
				mapOf(mapOf(tpl["Outputs"])["WebSocketURL"])["Value"] = sub("wss://${Api}.execute-api.${AWS::Regoin}.${AWS::URLSuffix}/${Stage}")
			}},
		{name: "broken DependsOn", check: CheckRef, want: `DependsOn "DefaultRoutes"`,
			mutate: func(t *testing.T, tpl Template) {
				res(t, tpl, "Stage")["DependsOn"] = []any{"ConnectRoute", "DisconnectRoute", "DefaultRoutes", "DefaultRouteResponse"}
			}},

		// functions and their build
		{name: "handler the bootstrap does not know", check: CheckFunction, want: `Handler "routes"`,
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "Route")["Handler"] = "routes" }},
		{name: "two functions, one handler", check: CheckFunction, want: `no function has Handler "streamfanout"`,
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "StreamFanout")["Handler"] = "route" }},
		{name: "sam.mk builds another guest", check: CheckBuild, want: `sam.mk builds "connect" for build-Route`,
			mutateMake: func(mk *SAMMakefile) { mk.Handlers["Route"] = "connect" }},
		{name: "no build target", check: CheckBuild, want: "no target build-StreamFanout",
			mutateMake: func(mk *SAMMakefile) { delete(mk.Targets, "StreamFanout") }},
		{name: "CodeUri not the repository root", check: CheckBuild, want: `CodeUri "../functions/route"`,
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "Route")["CodeUri"] = "../functions/route" }},
		{name: "not built by make", check: CheckBuild, want: "BuildMethod",
			mutate: func(t *testing.T, tpl Template) { mapOf(res(t, tpl, "Connect")["Metadata"])["BuildMethod"] = "go1.x" }},
		{name: "route timeout at the gateway's", check: CheckFunction, want: "29 s",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "Route")["Timeout"] = 29 }},
		{name: "another runtime", check: CheckFunction, want: "provided.al2023",
			mutate: func(t *testing.T, tpl Template) { mapOf(mapOf(tpl["Globals"])["Function"])["Runtime"] = "provided.al2" }},
		{name: "template and sam.mk disagree on the architecture", check: CheckFunction, want: `sam.mk builds "x86_64"`,
			mutateMake: func(mk *SAMMakefile) { mk.DefaultArch = "x86_64" }},
		{name: "architecture not a parameter", check: CheckFunction, want: "Architectures",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "Authorizer")["Architectures"] = []any{"x86_64"} }},
		{name: "memory beyond Lambda's", check: CheckFunction, want: "within 128 to 10240 MB",
			mutate: func(t *testing.T, tpl Template) {
				mapOf(mapOf(tpl["Parameters"])["FanoutMemorySize"])["MaxValue"] = 20480
			}},
		{name: "memory shared by two functions", check: CheckFunction, want: "is also Connect's",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "Route")["MemorySize"] = ref("ConnectMemorySize") }},
		{name: "memory not a parameter", check: CheckFunction, want: "MemorySize is not a parameter",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "Authorizer")["MemorySize"] = 256 }},

		// settings
		{name: "memory backend", check: CheckEnv, want: `WSBIND_BACKEND "memory"`,
			mutate: func(t *testing.T, tpl Template) { env(t, tpl, "Connect")["WSBIND_BACKEND"] = "memory" }},
		{name: "functions disagree on a table", check: CheckEnv, want: "another function's",
			mutate: func(t *testing.T, tpl Template) {
				env(t, tpl, "StreamFanout")["WSBIND_TABLE_ITEMS"] = ref("ConnectionsTable")
			}},
		{name: "table setting not a table", check: CheckEnv, want: "WSBIND_TABLE_SUBSCRIPTIONS is not a Ref to a table",
			mutate: func(t *testing.T, tpl Template) { env(t, tpl, "Route")["WSBIND_TABLE_SUBSCRIPTIONS"] = "subscriptions" }},
		{name: "secret setting reaches a guest function", check: CheckEnv, want: "authorizer alone",
			mutate: func(t *testing.T, tpl Template) {
				env(t, tpl, "Route")["WSBIND_AUTH_HS256_SECRET_PARAM"] = ref("AuthHS256SecretParameter")
			}},
		{name: "secret's name not a parameter", check: CheckEnv, want: "WSBIND_AUTH_HS256_SECRET_PARAM is not a Ref",
			mutate: func(t *testing.T, tpl Template) { del(t, env(t, tpl, "Authorizer"), "WSBIND_AUTH_HS256_SECRET_PARAM") }},
		{name: "no management endpoint", check: CheckEnv, want: "WSBIND_MANAGEMENT_ENDPOINT",
			mutate: func(t *testing.T, tpl Template) { del(t, env(t, tpl, "StreamFanout"), "WSBIND_MANAGEMENT_ENDPOINT") }},
		{name: "management endpoint of another API", check: CheckEnv, want: "names ${Other}",
			mutate: func(t *testing.T, tpl Template) {
				env(t, tpl, "StreamFanout")["WSBIND_MANAGEMENT_ENDPOINT"] = sub("https://${Other}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}")
				mapOf(tpl["Parameters"])["Other"] = map[string]any{"Type": "String"}
			}},
		{name: "no page size", check: CheckEnv, want: "WSBIND_PAGE_SIZE",
			mutate: func(t *testing.T, tpl Template) { del(t, env(t, tpl, "Route"), "WSBIND_PAGE_SIZE") }},

		// secrets
		{name: "secret back in the environment", check: CheckSecret, want: "WSBIND_AUTH_HS256_SECRET in the environment",
			mutate: func(t *testing.T, tpl Template) {
				mapOf(tpl["Parameters"])["AuthHS256Secret"] = map[string]any{"Type": "String", "NoEcho": true}
				env(t, tpl, "Authorizer")["WSBIND_AUTH_HS256_SECRET"] = ref("AuthHS256Secret")
				del(t, env(t, tpl, "Authorizer"), "WSBIND_AUTH_HS256_SECRET_PARAM")
			}},
		{name: "a NoEcho parameter in an environment", check: CheckSecret, want: "holds the NoEcho parameter ApiKey",
			mutate: func(t *testing.T, tpl Template) {
				mapOf(tpl["Parameters"])["ApiKey"] = map[string]any{"Type": "String", "NoEcho": "true"}
				env(t, tpl, "Route")["WSBIND_API_KEY"] = sub("key=${ApiKey}")
			}},
		{name: "secret unreadable", check: CheckIAMGrants, want: "lacks ssm:GetParameter hs256-secret",
			mutate: func(t *testing.T, tpl Template) { dropCondStmt(t, tpl, "Authorizer", "ReadHS256Secret") }},
		{name: "secret readable beyond its parameter", check: CheckIAMGrants, want: "grants ssm:GetParameter",
			mutate: func(t *testing.T, tpl Template) {
				condStmt(t, tpl, "Authorizer", "ReadHS256Secret")["Resource"] = sub("arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/*")
			}},
		{name: "secret's key usable outside Parameter Store", check: CheckIAMGrants, want: "kms:Decrypt secret-key",
			mutate: func(t *testing.T, tpl Template) {
				del(t, condStmt(t, tpl, "Authorizer", "DecryptHS256Secret"), "Condition")
			}},

		// logs
		{name: "function without its log group", check: CheckLogGroup, want: "LoggingConfig.LogGroup",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "StreamFanout"), "LoggingConfig") }},
		{name: "two functions, one log group", check: CheckLogGroup, want: "is also Connect's",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "Route")["LoggingConfig"] = map[string]any{"LogGroup": ref("ConnectLogGroup")}
			}},
		{name: "logs kept forever", check: CheckLogGroup, want: "no RetentionInDays",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "RouteLogGroup"), "RetentionInDays") }},
		{name: "retention CloudWatch refuses", check: CheckLogGroup, want: "AllowedValues has 31",
			mutate: func(t *testing.T, tpl Template) {
				p := mapOf(mapOf(tpl["Parameters"])["LogRetentionDays"])
				p["AllowedValues"] = append(listOf(p["AllowedValues"]), 31)
			}},

		// the stage's throttling and access logs
		{name: "stage unthrottled", check: CheckThrottle, want: "ThrottlingRateLimit",
			mutate: func(t *testing.T, tpl Template) {
				del(t, mapOf(props(t, tpl, "Stage")["DefaultRouteSettings"]), "ThrottlingRateLimit")
			}},
		{name: "no access logs", check: CheckAccessLog, want: "no AccessLogSettings",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "Stage"), "AccessLogSettings") }},
		{name: "access log without connection ids", check: CheckAccessLog, want: "lacks $context.connectionId",
			mutate: func(t *testing.T, tpl Template) {
				al := accessLog(t, tpl)
				al["Format"] = strings.ReplaceAll(strOf(al["Format"]), "$context.connectionId", "")
			}},
		{name: "access log not JSON", check: CheckAccessLog, want: "not a JSON object",
			mutate: func(t *testing.T, tpl Template) {
				al := accessLog(t, tpl)
				al["Format"] = strings.TrimSuffix(strOf(al["Format"]), "}")
			}},
		{name: "access logs kept forever", check: CheckAccessLog, want: "no RetentionInDays",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "ApiAccessLogGroup"), "RetentionInDays") }},
		{name: "stage before the account's role", check: CheckAccessLog, want: "does not wait for ApiGatewayAccount",
			mutate: func(t *testing.T, tpl Template) {
				res(t, tpl, "Stage")["DependsOn"] = []any{"ConnectRoute", "DisconnectRoute", "DefaultRoute", "DefaultRouteResponse"}
			}},

		// alarms
		{name: "no errors alarm", check: CheckAlarm, want: "no alarm on its Errors",
			mutate: func(t *testing.T, tpl Template) { delete(mapOf(tpl["Resources"]), "RouteErrorsAlarm") }},
		{name: "no throttles alarm", check: CheckAlarm, want: "no alarm on its Throttles",
			mutate: func(t *testing.T, tpl Template) { delete(mapOf(tpl["Resources"]), "AuthorizerThrottlesAlarm") }},
		{name: "no iterator age alarm", check: CheckAlarm, want: "IteratorAge",
			mutate: func(t *testing.T, tpl Template) { delete(mapOf(tpl["Resources"]), "StreamFanoutIteratorAgeAlarm") }},
		{name: "iterator age threshold fixed", check: CheckAlarm, want: "Threshold is not a parameter",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "StreamFanoutIteratorAgeAlarm")["Threshold"] = 60000 }},
		{name: "no DLQ depth alarm", check: CheckAlarm, want: "ApproximateNumberOfMessagesVisible",
			mutate: func(t *testing.T, tpl Template) { delete(mapOf(tpl["Resources"]), "FanoutDLQDepthAlarm") }},
		{name: "alarm on a table, not a function", check: CheckAlarm, want: "FunctionName is not a Ref to a function",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "ConnectErrorsAlarm")["Dimensions"] = []any{map[string]any{"Name": "FunctionName", "Value": ref("ItemsTable")}}
			}},
		{name: "DLQ alarm on the queue's URL", check: CheckAlarm, want: "QueueName is not the QueueName",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "FanoutDLQDepthAlarm")["Dimensions"] = []any{map[string]any{"Name": "QueueName", "Value": ref("FanoutDLQ")}}
			}},
		{name: "alarm that tells no one", check: CheckAlarm, want: "no AlarmActions",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "ApiExecutionErrorAlarm"), "AlarmActions") }},
		{name: "no API execution error alarm", check: CheckAlarm, want: "ExecutionError",
			mutate: func(t *testing.T, tpl Template) { delete(mapOf(tpl["Resources"]), "ApiExecutionErrorAlarm") }},

		// retention
		{name: "items deleted with the stack", check: CheckRetention, want: "DeletionPolicy Delete",
			mutate: func(t *testing.T, tpl Template) { res(t, tpl, "ItemsTable")["DeletionPolicy"] = "Delete" }},
		{name: "table without a stated policy", check: CheckRetention, want: "no UpdateReplacePolicy",
			mutate: func(t *testing.T, tpl Template) { del(t, res(t, tpl, "HistoryTable"), "UpdateReplacePolicy") }},
		{name: "queue without a stated policy", check: CheckRetention, want: "no DeletionPolicy",
			mutate: func(t *testing.T, tpl Template) { del(t, res(t, tpl, "FanoutDLQ"), "DeletionPolicy") }},
		{name: "log group without a stated policy", check: CheckRetention, want: "no DeletionPolicy",
			mutate: func(t *testing.T, tpl Template) { del(t, res(t, tpl, "ConnectLogGroup"), "DeletionPolicy") }},
		{name: "no point-in-time recovery", check: CheckRetention, want: "PointInTimeRecoveryEnabled",
			mutate: func(t *testing.T, tpl Template) {
				del(t, props(t, tpl, "ItemsTable"), "PointInTimeRecoverySpecification")
			}},
		{name: "failed batches kept 4 days", check: CheckRetention, want: "MessageRetentionPeriod",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "FanoutDLQ"), "MessageRetentionPeriod") }},
		{name: "account's logging role deleted with the stack", check: CheckRetention, want: "no longer exists",
			mutate: func(t *testing.T, tpl Template) {
				res(t, tpl, "ApiGatewayCloudWatchLogsRole")["DeletionPolicy"] = "Delete"
			}},

		// tracing
		{name: "tracing fixed", check: CheckTracing, want: "Tracing is not a parameter",
			mutate: func(t *testing.T, tpl Template) { mapOf(mapOf(tpl["Globals"])["Function"])["Tracing"] = "Active" }},
		{name: "tracing parameter allows Disabled", check: CheckTracing, want: "want Active and PassThrough",
			mutate: func(t *testing.T, tpl Template) {
				mapOf(mapOf(tpl["Parameters"])["Tracing"])["AllowedValues"] = []any{"Active", "PassThrough", "Disabled"}
			}},

		// the API, routes, integrations
		{name: "routing on a body field", check: CheckAPI, want: "RouteSelectionExpression",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "Api")["RouteSelectionExpression"] = "$request.body.action"
			}},
		{name: "no $disconnect route", check: CheckRoute, want: "no $disconnect route",
			mutate: func(t *testing.T, tpl Template) { delete(mapOf(tpl["Resources"]), "DisconnectRoute") }},
		{name: "a custom route", check: CheckRoute, want: "never be selected",
			mutate: func(t *testing.T, tpl Template) {
				mapOf(tpl["Resources"])["CreateRoute"] = map[string]any{"Type": "AWS::ApiGatewayV2::Route", "Properties": map[string]any{
					"ApiId": ref("Api"), "RouteKey": "create", "Target": sub("integrations/${RouteIntegration}")}}
			}},
		{name: "route without integration", check: CheckIntegration, want: "Target",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "DefaultRoute"), "Target") }},
		{name: "$default to the connect function", check: CheckIntegration, want: "want the route function",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "DefaultRoute")["Target"] = sub("integrations/${ConnectIntegration}")
			}},
		{name: "integration not a proxy", check: CheckIntegration, want: "AWS_PROXY",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "ConnectIntegration")["IntegrationType"] = "AWS" }},
		{name: "integration URI not a function's", check: CheckIntegration, want: "IntegrationUri",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "RouteIntegration")["IntegrationUri"] = sub("arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${ItemsTable.Arn}/invocations")
			}},

		// the authorizer
		{name: "identity source refuses anonymous connections", check: CheckAuthorizer, want: "IdentitySource",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "ConnectAuthorizer")["IdentitySource"] = []any{"route.request.querystring.token"}
			}},
		{name: "$connect not authorized", check: CheckAuthorizer, want: "CUSTOM",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "ConnectRoute")["AuthorizationType"] = "NONE"
				del(t, props(t, tpl, "ConnectRoute"), "AuthorizerId")
			}},
		{name: "authorizer runs the connect function", check: CheckAuthorizer, want: "AuthorizerUri",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "ConnectAuthorizer")["AuthorizerUri"] = sub("arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Connect.Arn}/invocations")
			}},

		// replies
		{name: "RouteResponse dropped", check: CheckRouteResponse, want: "no AWS::ApiGatewayV2::RouteResponse",
			mutate: func(t *testing.T, tpl Template) {
				delete(mapOf(tpl["Resources"]), "DefaultRouteResponse")
				res(t, tpl, "Stage")["DependsOn"] = []any{"ConnectRoute", "DisconnectRoute", "DefaultRoute"}
			}},
		{name: "RouteResponse of another route", check: CheckRouteResponse, want: "no AWS::ApiGatewayV2::RouteResponse",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "DefaultRouteResponse")["RouteId"] = ref("ConnectRoute")
			}},
		{name: "no route response selection", check: CheckRouteResponse, want: "RouteResponseSelectionExpression",
			mutate: func(t *testing.T, tpl Template) {
				del(t, props(t, tpl, "DefaultRoute"), "RouteResponseSelectionExpression")
			}},

		// invoke permissions
		{name: "route permission removed", check: CheckPermission, want: "invoke Route for $default",
			mutate: func(t *testing.T, tpl Template) { delete(mapOf(tpl["Resources"]), "RoutePermission") }},
		{name: "permission for the wrong route", check: CheckPermission, want: "invoke Connect for $disconnect",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "DisconnectPermission")["SourceArn"] = apiArn("${Api}/*/$connect")
			}},
		{name: "permission for the wrong function", check: CheckPermission, want: "invoke Route for $default",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "RoutePermission")["FunctionName"] = ref("Connect") }},
		{name: "authorizer permission removed", check: CheckPermission, want: "as authorizer ConnectAuthorizer",
			mutate: func(t *testing.T, tpl Template) { delete(mapOf(tpl["Resources"]), "AuthorizerPermission") }},
		{name: "permission from any API", check: CheckPermission, want: "not scoped to Api",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "AuthorizerPermission")["SourceArn"] = apiArn("*") }},
		{name: "permission without SourceArn", check: CheckPermission, want: "not scoped to Api",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "ConnectPermission"), "SourceArn") }},

		// deployment
		{name: "stage never deployed", check: CheckStage, want: "nothing is deployed",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "Stage"), "AutoDeploy") }},
		{name: "stage deployed before the route response", check: CheckStage, want: "DependsOn DefaultRouteResponse",
			mutate: func(t *testing.T, tpl Template) {
				res(t, tpl, "Stage")["DependsOn"] = []any{"ConnectRoute", "DisconnectRoute", "DefaultRoute"}
			}},

		// IAM
		{name: "resource widened to *", check: CheckIAMWildcard, want: `Resource "*"`,
			mutate: func(t *testing.T, tpl Template) { stmt(t, tpl, "Route", "Objects")["Resource"] = "*" }},
		{name: "stream reads on every stream", check: CheckIAMWildcard, want: `Resource "*"`,
			mutate: func(t *testing.T, tpl Template) { stmt(t, tpl, "StreamFanout", "ReadItemsStream")["Resource"] = "*" }},
		{name: "action wildcard", check: CheckIAMWildcard, want: `action "dynamodb:*"`,
			mutate: func(t *testing.T, tpl Template) {
				stmt(t, tpl, "Connect", "RecordConnection")["Action"] = []any{"dynamodb:*"}
			}},
		{name: "ManageConnections on the whole API", check: CheckIAMManageConnections, want: "ManageConnections on",
			mutate: func(t *testing.T, tpl Template) {
				stmt(t, tpl, "StreamFanout", "Push")["Resource"] = apiArn("${Api}/*")
			}},
		{name: "ManageConnections on every API", check: CheckIAMWildcard, want: `Resource "*"`,
			mutate: func(t *testing.T, tpl Template) { stmt(t, tpl, "StreamFanout", "Push")["Resource"] = "*" }},
		{name: "ManageConnections for any method", check: CheckIAMManageConnections, want: "@connections/*",
			mutate: func(t *testing.T, tpl Template) {
				stmt(t, tpl, "StreamFanout", "Push")["Resource"] = apiArn("${Api}/${Stage}/*/@connections/*")
			}},
		{name: "stuck connections cannot be closed", check: CheckIAMGrants, want: "lacks execute-api:ManageConnections DELETE @connections",
			mutate: func(t *testing.T, tpl Template) {
				stmt(t, tpl, "StreamFanout", "Push")["Resource"] = apiArn("${Api}/${Stage}/POST/@connections/*")
			}},
		{name: "an action beyond the need", check: CheckIAMGrants, want: "grants dynamodb:Scan items",
			mutate: func(t *testing.T, tpl Template) {
				stmt(t, tpl, "Route", "Objects")["Action"] = []any{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:Scan"}
			}},
		{name: "a table beyond the need", check: CheckIAMGrants, want: "grants dynamodb:PutItem items",
			mutate: func(t *testing.T, tpl Template) {
				stmt(t, tpl, "Connect", "RecordConnection")["Resource"] = getAtt("ItemsTable", "Arn")
			}},
		{name: "a grant missing", check: CheckIAMGrants, want: "lacks dynamodb:PutItem subscriptions",
			mutate: func(t *testing.T, tpl Template) { dropStmt(t, tpl, "Route", "Subscribe") }},
		{name: "every scope unreadable", check: CheckIAMGrants, want: "lacks dynamodb:Query items/index/by_binding",
			mutate: func(t *testing.T, tpl Template) { dropStmt(t, tpl, "Route", "ObjectsOfEveryScope") }},
		{name: "unsubscribe not granted", check: CheckIAMGrants, want: "lacks dynamodb:DeleteItem subscriptions",
			mutate: func(t *testing.T, tpl Template) {
				stmt(t, tpl, "Route", "Subscribe")["Action"] = []any{"dynamodb:PutItem"}
			}},
		{name: "failure queue not writable", check: CheckIAMGrants, want: "lacks sqs:SendMessage dlq",
			mutate: func(t *testing.T, tpl Template) { dropStmt(t, tpl, "StreamFanout", "ParkFailedBatches") }},
		{name: "the authorizer given a table", check: CheckIAMGrants, want: "beyond what the authorizer function needs",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "Authorizer")["Policies"] = []any{map[string]any{"Statement": []any{map[string]any{
					"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": getAtt("ConnectionsTable", "Arn")}}}}
			}},
		{name: "a managed policy", check: CheckIAMPolicy, want: "not an inline policy document",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "Route")["Policies"] = append(listOf(props(t, tpl, "Route")["Policies"]), "AmazonDynamoDBFullAccess")
			}},
		{name: "a SAM stream event", check: CheckIAMPolicy, want: "managed policy",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "StreamFanout")["Events"] = map[string]any{"Items": map[string]any{"Type": "DynamoDB", "Properties": map[string]any{
					"Stream": getAtt("ItemsTable", "StreamArn"), "StartingPosition": "LATEST"}}}
			}},

		// tables
		{name: "items stream without old images", check: CheckTable, want: "stream view type",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "ItemsTable")["StreamSpecification"] = map[string]any{"StreamViewType": "NEW_IMAGE"}
			}},
		{name: "items without its sort key", check: CheckTable, want: `want partition "_stream" and sort "id"`,
			mutate: func(t *testing.T, tpl Template) {
				p := props(t, tpl, "ItemsTable")
				p["KeySchema"] = listOf(p["KeySchema"])[:1]
			}},
		{name: "subscriptions without by_conn", check: CheckTable, want: "no global secondary index by_conn",
			mutate: func(t *testing.T, tpl Template) {
				del(t, props(t, tpl, "SubscriptionsTable"), "GlobalSecondaryIndexes")
			}},
		{name: "by_conn projects all", check: CheckTable, want: "projects",
			mutate: func(t *testing.T, tpl Template) {
				g := mapOf(listOf(props(t, tpl, "SubscriptionsTable")["GlobalSecondaryIndexes"])[0])
				g["Projection"] = map[string]any{"ProjectionType": "ALL"}
			}},
		{name: "subscriptions keyed by connection alone", check: CheckTable, want: `want partition "topic" and sort "sub"`,
			mutate: func(t *testing.T, tpl Template) {
				k := mapOf(listOf(props(t, tpl, "SubscriptionsTable")["KeySchema"])[1])
				k["AttributeName"] = "conn_id"
			}},
		{name: "items without by_binding", check: CheckTable, want: "no global secondary index by_binding",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "ItemsTable"), "GlobalSecondaryIndexes") }},
		{name: "by_binding projects keys only", check: CheckTable, want: "index by_binding projects",
			mutate: func(t *testing.T, tpl Template) {
				g := mapOf(listOf(props(t, tpl, "ItemsTable")["GlobalSecondaryIndexes"])[0])
				g["Projection"] = map[string]any{"ProjectionType": "KEYS_ONLY"}
			}},
		{name: "by_binding on the stream", check: CheckTable, want: `index by_binding ("_stream", "id")`,
			mutate: func(t *testing.T, tpl Template) {
				g := mapOf(listOf(props(t, tpl, "ItemsTable")["GlobalSecondaryIndexes"])[0])
				mapOf(listOf(g["KeySchema"])[0])["AttributeName"] = "_stream"
			}},
		{name: "connections without TTL", check: CheckTable, want: "TTL",
			mutate: func(t *testing.T, tpl Template) {
				mapOf(props(t, tpl, "ConnectionsTable")["TimeToLiveSpecification"])["Enabled"] = false
			}},
		{name: "provisioned table", check: CheckTable, want: "PAY_PER_REQUEST",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "SubscriptionsTable")["BillingMode"] = "PROVISIONED" }},

		// the stream's event source
		{name: "no event source", check: CheckStreamSource, want: "no AWS::Lambda::EventSourceMapping",
			mutate: func(t *testing.T, tpl Template) { delete(mapOf(tpl["Resources"]), "ItemsStream") }},
		{name: "retries forever", check: CheckStreamSource, want: "MaximumRetryAttempts",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "ItemsStream")["MaximumRetryAttempts"] = -1 }},
		{name: "records never age out", check: CheckStreamSource, want: "MaximumRecordAgeInSeconds",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "ItemsStream"), "MaximumRecordAgeInSeconds") }},
		{name: "no bisecting", check: CheckStreamSource, want: "BisectBatchOnFunctionError",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "ItemsStream")["BisectBatchOnFunctionError"] = false }},
		{name: "partial batch responses ignored", check: CheckStreamSource, want: "ReportBatchItemFailures",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "ItemsStream"), "FunctionResponseTypes") }},
		{name: "no failure destination", check: CheckStreamSource, want: "DestinationConfig",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "ItemsStream"), "DestinationConfig") }},
		{name: "replays the stream", check: CheckStreamSource, want: "LATEST",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "ItemsStream")["StartingPosition"] = "TRIM_HORIZON" }},

		// outputs
		{name: "no wss URL", check: CheckOutput, want: "wss://",
			mutate: func(t *testing.T, tpl Template) { delete(mapOf(tpl["Outputs"]), "WebSocketURL") }},
		{name: "no failure queue URL", check: CheckOutput, want: "failure queue",
			mutate: func(t *testing.T, tpl Template) { delete(mapOf(tpl["Outputs"]), "FanoutDLQURL") }},

		// the push workers, and the fan-out's pacing over them
		{name: "no push function", check: CheckFunction, want: `no function has Handler "push"`,
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "Push")["Handler"] = "authorizer" }},
		{name: "no build target for the push function", check: CheckBuild, want: "no target build-Push",
			mutateMake: func(mk *SAMMakefile) { delete(mk.Targets, "Push") }},
		{name: "sam.mk builds a guest for the push function", check: CheckBuild, want: `sam.mk builds "streamfanout" for build-Push`,
			mutateMake: func(mk *SAMMakefile) { mk.Handlers["Push"] = "streamfanout" }},
		{name: "push memory shared with the fan-out", check: CheckFunction, want: "FanoutMemorySize is also Push's",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "Push")["MemorySize"] = ref("FanoutMemorySize") }},
		{name: "push memory beyond Lambda's", check: CheckFunction, want: "PushMemorySize: Default",
			mutate: func(t *testing.T, tpl Template) {
				mapOf(mapOf(tpl["Parameters"])["PushMemorySize"])["MaxValue"] = 20480
			}},
		{name: "push worker without its log group", check: CheckLogGroup, want: "Push: LoggingConfig.LogGroup",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "Push"), "LoggingConfig") }},
		{name: "no push errors alarm", check: CheckAlarm, want: "Push: no alarm on its Errors",
			mutate: func(t *testing.T, tpl Template) { delete(mapOf(tpl["Resources"]), "PushErrorsAlarm") }},
		{name: "no push throttles alarm", check: CheckAlarm, want: "Push: no alarm on its Throttles",
			mutate: func(t *testing.T, tpl Template) { delete(mapOf(tpl["Resources"]), "PushThrottlesAlarm") }},
		{name: "push worker on the memory backend", check: CheckEnv, want: `Push: WSBIND_BACKEND "memory"`,
			mutate: func(t *testing.T, tpl Template) { env(t, tpl, "Push")["WSBIND_BACKEND"] = "memory" }},
		{name: "push worker forgets gone connections in another table", check: CheckEnv, want: "Push: WSBIND_TABLE_CONNECTIONS names ItemsTable",
			mutate: func(t *testing.T, tpl Template) { env(t, tpl, "Push")["WSBIND_TABLE_CONNECTIONS"] = ref("ItemsTable") }},
		{name: "push worker without its management endpoint", check: CheckEnv, want: "Push: WSBIND_MANAGEMENT_ENDPOINT",
			mutate: func(t *testing.T, tpl Template) { del(t, env(t, tpl, "Push"), "WSBIND_MANAGEMENT_ENDPOINT") }},
		{name: "fan-out not told the push function", check: CheckEnv, want: "WSBIND_PUSH_WORKER_FUNCTION is not a Ref to the push function",
			mutate: func(t *testing.T, tpl Template) { del(t, env(t, tpl, "StreamFanout"), "WSBIND_PUSH_WORKER_FUNCTION") }},
		{name: "fan-out's push workers are the route function", check: CheckEnv, want: "WSBIND_PUSH_WORKER_FUNCTION is not a Ref to the push function",
			mutate: func(t *testing.T, tpl Template) {
				env(t, tpl, "StreamFanout")["WSBIND_PUSH_WORKER_FUNCTION"] = ref("Route")
			}},
		{name: "quota fixed in the fan-out", check: CheckEnv, want: "StreamFanout: WSBIND_PUSH_QUOTA is not a Ref to a parameter",
			mutate: func(t *testing.T, tpl Template) { env(t, tpl, "StreamFanout")["WSBIND_PUSH_QUOTA"] = "10000" }},
		{name: "push worker not told the fan-out's concurrency", check: CheckEnv, want: "Push: WSBIND_FANOUT_CONCURRENCY is not a Ref to a parameter",
			mutate: func(t *testing.T, tpl Template) { del(t, env(t, tpl, "Push"), "WSBIND_FANOUT_CONCURRENCY") }},
		{name: "push workers unreserved", check: CheckPushPacing, want: "Push: ReservedConcurrentExecutions is not !Ref PushWorkers",
			mutate: func(t *testing.T, tpl Template) { del(t, props(t, tpl, "Push"), "ReservedConcurrentExecutions") }},
		{name: "push workers reserved by another parameter", check: CheckPushPacing, want: "Push: ReservedConcurrentExecutions is not !Ref PushWorkers",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "Push")["ReservedConcurrentExecutions"] = ref("FanoutConcurrency")
			}},
		{name: "push workers reserved by a number", check: CheckPushPacing, want: "Push: ReservedConcurrentExecutions is not !Ref PushWorkers",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "Push")["ReservedConcurrentExecutions"] = 20 }},
		{name: "fan-out unreserved", check: CheckPushPacing, want: "StreamFanout: ReservedConcurrentExecutions is not !Ref FanoutConcurrency",
			mutate: func(t *testing.T, tpl Template) {
				del(t, props(t, tpl, "StreamFanout"), "ReservedConcurrentExecutions")
			}},
		{name: "fan-out reserved by the workers' parameter", check: CheckPushPacing, want: "StreamFanout: ReservedConcurrentExecutions is not !Ref FanoutConcurrency",
			mutate: func(t *testing.T, tpl Template) {
				props(t, tpl, "StreamFanout")["ReservedConcurrentExecutions"] = ref("PushWorkers")
			}},
		{name: "fan-out and workers count the workers differently", check: CheckPushPacing, want: "WSBIND_PUSH_WORKERS is PushWorkers, StreamFanout's is Chunks",
			mutate: func(t *testing.T, tpl Template) {
				mapOf(tpl["Parameters"])["Chunks"] = map[string]any{"Type": "Number", "Default": 20, "MinValue": 1}
				env(t, tpl, "StreamFanout")["WSBIND_PUSH_WORKERS"] = ref("Chunks")
			}},
		{name: "fan-out and workers count the fan-outs differently", check: CheckPushPacing, want: "WSBIND_FANOUT_CONCURRENCY is Parents",
			mutate: func(t *testing.T, tpl Template) {
				mapOf(tpl["Parameters"])["Parents"] = map[string]any{"Type": "Number", "Default": 1, "MinValue": 1}
				env(t, tpl, "Push")["WSBIND_FANOUT_CONCURRENCY"] = ref("Parents")
			}},
		{name: "fan-out and workers split different quotas", check: CheckPushPacing, want: "WSBIND_PUSH_QUOTA is OtherQuota",
			mutate: func(t *testing.T, tpl Template) {
				mapOf(tpl["Parameters"])["OtherQuota"] = map[string]any{"Type": "Number", "Default": 5000}
				env(t, tpl, "Push")["WSBIND_PUSH_QUOTA"] = ref("OtherQuota")
			}},
		{name: "no push workers allowed", check: CheckPushPacing, want: "PushWorkers: MinValue 0",
			mutate: func(t *testing.T, tpl Template) { mapOf(mapOf(tpl["Parameters"])["PushWorkers"])["MinValue"] = 0 }},
		{name: "fan-out gives up before its workers", check: CheckPushPacing, want: "StreamFanout: Timeout 60 s, below Push's 900 s",
			mutate: func(t *testing.T, tpl Template) { props(t, tpl, "StreamFanout")["Timeout"] = 60 }},
		{name: "push workers not invocable", check: CheckIAMGrants, want: "StreamFanout: lacks lambda:InvokeFunction push",
			mutate: func(t *testing.T, tpl Template) { dropStmt(t, tpl, "StreamFanout", "InvokePushWorkers") }},
		{name: "fan-out may invoke any function", check: CheckIAMWildcard, want: `Resource "*" with [lambda:InvokeFunction]`,
			mutate: func(t *testing.T, tpl Template) { stmt(t, tpl, "StreamFanout", "InvokePushWorkers")["Resource"] = "*" }},
		{name: "fan-out may invoke another function", check: CheckIAMGrants, want: "grants lambda:InvokeFunction Route.Arn",
			mutate: func(t *testing.T, tpl Template) {
				stmt(t, tpl, "StreamFanout", "InvokePushWorkers")["Resource"] = getAtt("Route", "Arn")
			}},
		{name: "push worker invokes itself", check: CheckIAMGrants, want: "Push: grants lambda:InvokeFunction push, beyond what the push function needs",
			mutate: func(t *testing.T, tpl Template) {
				doc := mapOf(listOf(props(t, tpl, "Push")["Policies"])[0])
				doc["Statement"] = append(listOf(doc["Statement"]), map[string]any{
					"Effect": "Allow", "Action": []any{"lambda:InvokeFunction"}, "Resource": getAtt("Push", "Arn")})
			}},
		{name: "push worker reads the items", check: CheckIAMGrants, want: "Push: grants dynamodb:DeleteItem items",
			mutate: func(t *testing.T, tpl Template) {
				stmt(t, tpl, "Push", "ForgetGoneConnection")["Resource"] = getAtt("ItemsTable", "Arn")
			}},
		{name: "push worker cannot close stuck connections", check: CheckIAMGrants, want: "Push: lacks execute-api:ManageConnections DELETE @connections",
			mutate: func(t *testing.T, tpl Template) {
				stmt(t, tpl, "Push", "Push")["Resource"] = apiArn("${Api}/${Stage}/POST/@connections/*")
			}},
		{name: "push worker cannot drop a gone connection's subscriptions", check: CheckIAMGrants, want: "Push: lacks dynamodb:BatchWriteItem subscriptions",
			mutate: func(t *testing.T, tpl Template) { dropStmt(t, tpl, "Push", "DropSubscriptionsOfGoneConnection") }},
		{name: "push worker posts on the whole API", check: CheckIAMManageConnections, want: "Push: Policies",
			mutate: func(t *testing.T, tpl Template) { stmt(t, tpl, "Push", "Push")["Resource"] = apiArn("${Api}/*") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tpl, cfg := load(t)
			if tt.mutate != nil {
				tt.mutate(t, tpl)
			}
			if tt.mutateMake != nil {
				tt.mutateMake(cfg.Make)
			}
			problems := Check(tpl, cfg)
			if !slices.ContainsFunc(problems, func(p Problem) bool { return p.Check == tt.check && strings.Contains(p.String(), tt.want) }) {
				t.Errorf("no %s problem containing %q; got:", tt.check, tt.want)
				for _, p := range problems {
					t.Log(p)
				}
			}
		})
	}
}

// TestCheck_DeploymentForm: a Stage may be deployed by an explicit
// Deployment instead of AutoDeploy, if the Deployment waits for every
// route and the route response.
func TestCheck_DeploymentForm(t *testing.T) {
	tpl, cfg := load(t)
	stage := res(t, tpl, "Stage")
	deps := stage["DependsOn"]
	// The stage still waits for the account's logging role.
	stage["DependsOn"] = []any{"ApiGatewayAccountReady"}
	del(t, props(t, tpl, "Stage"), "AutoDeploy")
	props(t, tpl, "Stage")["DeploymentId"] = ref("Deployment")
	deployment := map[string]any{"Type": "AWS::ApiGatewayV2::Deployment", "DependsOn": deps,
		"Properties": map[string]any{"ApiId": ref("Api")}}
	mapOf(tpl["Resources"])["Deployment"] = deployment
	for _, p := range Check(tpl, cfg) {
		t.Error(p)
	}

	deployment["DependsOn"] = []any{"ConnectRoute", "DefaultRoute", "DefaultRouteResponse"}
	problems := Check(tpl, cfg)
	if !slices.ContainsFunc(problems, func(p Problem) bool {
		return p.Check == CheckStage && p.Where == "Deployment" && strings.Contains(p.Msg, "DisconnectRoute")
	}) {
		t.Errorf("a Deployment not waiting for DisconnectRoute: no stage problem; got %v", problems)
	}
}

// TestCheck_Grants: the template grants each function exactly the
// brief's least privilege; wantGrants is that brief, one entry per
// function.
func TestCheck_Grants(t *testing.T) {
	if got := slices.Sorted(maps.Keys(wantGrants)); !slices.Equal(got, slices.Sorted(slices.Values(handlers))) {
		t.Errorf("wantGrants covers %v, the bootstrap serves %v", got, handlers)
	}
}
