package infra

import (
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsbind/wsbind/internal/aws/dynamo"
)

// The checks, as Problem.Check names them.
const (
	CheckRef                  = "ref"                    // a Ref, GetAtt, Sub name, condition or DependsOn that names nothing
	CheckFunction             = "function"               // runtime, architecture, memory, handler, timeout
	CheckBuild                = "build"                  // BuildMethod, CodeUri, build-<LogicalId> target and its handler
	CheckEnv                  = "env"                    // the bootstrap's settings
	CheckAPI                  = "api"                    // the WebSocket API itself
	CheckRoute                = "route"                  // $connect, $disconnect, $default and nothing else
	CheckIntegration          = "integration"            // each route's AWS_PROXY integration and its function
	CheckAuthorizer           = "authorizer"             // the REQUEST authorizer of $connect
	CheckRouteResponse        = "route-response"         // $default's reply is the route function's body
	CheckPermission           = "permission"             // API Gateway may invoke each function, from this API only
	CheckStage                = "stage"                  // the stage deploys every route
	CheckIAMWildcard          = "iam-wildcard"           // "*" in an action, or as the resource of a dynamodb or execute-api action
	CheckIAMManageConnections = "iam-manage-connections" // execute-api:ManageConnections beyond this stage's POST @connections
	CheckIAMGrants            = "iam-grants"             // each function gets exactly what it needs
	CheckIAMPolicy            = "iam-policy"             // policies that cannot be checked, or that SAM widens
	CheckTable                = "table"                  // keys, billing, TTL, index, stream
	CheckStreamSource         = "stream-source"          // the stream's event source and its failure handling
	CheckOutput               = "output"                 // the stack's outputs
	CheckLogGroup             = "log-group"              // each function logs to its own group, with retention
	CheckThrottle             = "throttle"               // the stage's throttling
	CheckAccessLog            = "access-log"             // the stage's access logs and the account's role they need
	CheckAlarm                = "alarm"                  // errors, throttles, iterator age, DLQ depth, API execution errors
	CheckSecret               = "secret"                 // no secret in any function's environment
	CheckRetention            = "retention"              // what stack deletion and replacement do to stateful resources
	CheckTracing              = "tracing"                // X-Ray tracing is a parameter of every function
	CheckPushPacing           = "push-pacing"            // reserved concurrencies are the counts the fan-out's pacing divides the quota by
)

// Problem is one way the template falls short.
type Problem struct {
	Check string // one of the Check constants
	Where string // the resource, parameter or section
	Msg   string
}

func (p Problem) String() string { return p.Check + ": " + p.Where + ": " + p.Msg }

// Config is what Check compares the template with.
type Config struct {
	// Handlers are the Handler values the bootstrap accepts; every one
	// must be served by exactly one function.
	Handlers []string
	// Make is infra/sam.mk, parsed.
	Make *SAMMakefile
	// TemplateDir is the template's directory; every function's CodeUri,
	// read from there, must be RepoRoot, where the Makefile is.
	TemplateDir, RepoRoot string
}

// The functions by Handler, as the bootstrap names them.
const (
	hConnect      = "connect"
	hRoute        = "route"
	hStreamFanout = "streamfanout"
	hAuthorizer   = "authorizer"
	hPush         = "push"
)

// Table roles: which of the three tables a resource is, as the functions'
// WSBIND_TABLE_* settings say.
const (
	tItems         = "items"
	tConnections   = "connections"
	tSubscriptions = "subscriptions"
	tIdempotency   = "idempotency"
	tHistory       = "history"
)

var tableVars = map[string]string{
	tItems:         "WSBIND_TABLE_ITEMS",
	tConnections:   "WSBIND_TABLE_CONNECTIONS",
	tSubscriptions: "WSBIND_TABLE_SUBSCRIPTIONS",
	tIdempotency:   "WSBIND_TABLE_IDEMPOTENCY",
	tHistory:       "WSBIND_TABLE_HISTORY",
}

// wantGrants is each function's least privilege: "action resource", the
// resource named by its role (a table's, "<table>/index/<name>",
// "<table>/stream/*", "dlq" for the stream's failure queue,
// "POST @connections" and "DELETE @connections" for this stage's
// @connections/* by method, "push" for the push worker function).
var wantGrants = map[string][]string{
	hRoute: {
		"dynamodb:GetItem items", "dynamodb:PutItem items", "dynamodb:DeleteItem items", "dynamodb:Query items",
		"dynamodb:Query items/index/" + dynamo.IndexByBinding,
		"dynamodb:PutItem subscriptions", "dynamodb:DeleteItem subscriptions",
		"dynamodb:GetItem connections",
		"dynamodb:PutItem idempotency", "dynamodb:UpdateItem idempotency", "dynamodb:DeleteItem idempotency",
		"dynamodb:Query history", "dynamodb:Query history/index/" + dynamo.IndexByStream,
		"execute-api:ManageConnections POST @connections", "execute-api:ManageConnections DELETE @connections",
	},
	hConnect: {
		"dynamodb:PutItem connections", "dynamodb:DeleteItem connections",
		"dynamodb:Query subscriptions/index/" + dynamo.IndexByConn,
		"dynamodb:BatchWriteItem subscriptions", "dynamodb:DeleteItem subscriptions",
	},
	hStreamFanout: {
		"dynamodb:Query subscriptions",
		"dynamodb:DeleteItem connections",
		"dynamodb:Query subscriptions/index/" + dynamo.IndexByConn, "dynamodb:BatchWriteItem subscriptions",
		"dynamodb:BatchWriteItem history",
		"execute-api:ManageConnections POST @connections", "execute-api:ManageConnections DELETE @connections",
		"dynamodb:DescribeStream items/stream/*", "dynamodb:GetRecords items/stream/*",
		"dynamodb:GetShardIterator items/stream/*", "dynamodb:ListStreams items/stream/*",
		"sqs:SendMessage dlq",
		// A push to many connections is split over push workers.
		"lambda:InvokeFunction push",
	},
	// A push worker posts its chunk and, like the fan-out, forgets a
	// connection API Gateway says is gone.
	hPush: {
		"dynamodb:DeleteItem connections",
		"dynamodb:Query subscriptions/index/" + dynamo.IndexByConn, "dynamodb:BatchWriteItem subscriptions",
		"execute-api:ManageConnections POST @connections", "execute-api:ManageConnections DELETE @connections",
	},
	// The secret's parameter, and the customer managed key it may be
	// encrypted with, through Parameter Store only.
	hAuthorizer: {"ssm:GetParameter hs256-secret", "kms:Decrypt secret-key via ssm"},
}

// tableSpec is the layout the backend expects of a table.
type tableSpec struct {
	hash, rng string // key attributes, all strings
	ttl       string // TTL attribute, "" for none
	stream    string // stream view type, "" for none
	gsi       *gsiSpec
}

type gsiSpec struct{ name, hash, rng, projection string }

// tableSpecs are the store's tables by role, read off the store's own
// definitions (dynamo.TableInputs, the one home of the layout): the check
// cannot drift from what the store reads and writes.
var tableSpecs = func() map[string]tableSpec {
	roles := dynamo.Tables{Items: tItems, Connections: tConnections, Subscriptions: tSubscriptions, Idempotency: tIdempotency, History: tHistory}
	specs := map[string]tableSpec{}
	for _, in := range dynamo.TableInputs(roles) {
		var s tableSpec
		s.hash, s.rng = keysOf(in.KeySchema)
		if in.StreamSpecification != nil {
			s.stream = string(in.StreamSpecification.StreamViewType)
		}
		for _, g := range in.GlobalSecondaryIndexes {
			h, r := keysOf(g.KeySchema)
			s.gsi = &gsiSpec{name: *g.IndexName, hash: h, rng: r, projection: string(g.Projection.ProjectionType)}
		}
		if *in.TableName != tItems {
			s.ttl = dynamo.AttrTTL
		}
		specs[*in.TableName] = s
	}
	return specs
}()

func keysOf(schema []types.KeySchemaElement) (hash, rng string) {
	for _, k := range schema {
		switch k.KeyType {
		case types.KeyTypeHash:
			hash = *k.AttributeName
		case types.KeyTypeRange:
			rng = *k.AttributeName
		}
	}
	return hash, rng
}

// The WebSocket routes: each key and the function that serves it.
var routeHandlers = map[string]string{"$connect": hConnect, "$disconnect": hConnect, "$default": hRoute}

var pseudoParams = []string{"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition",
	"AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix"}

// SAM event types that attach an AWS managed policy granting their
// actions on every resource.
var managedPolicyEvents = []string{"DynamoDB", "Kinesis", "SQS", "MSK", "MQ", "SelfManagedKafka", "DocumentDB"}

// Check reports every problem of t, in a stable order; none means the
// template gives the functions what they need, and no more.
func Check(t Template, cfg Config) []Problem {
	c := &checker{t: t, cfg: cfg, fnByHandler: map[string]string{}, tables: map[string]string{}}
	c.res = map[string]map[string]any{}
	for id, r := range mapOf(t["Resources"]) {
		c.res[id] = mapOf(r)
	}
	c.params = map[string]map[string]any{}
	for id, p := range mapOf(t["Parameters"]) {
		c.params[id] = mapOf(p)
	}
	c.conds = mapOf(t["Conditions"])
	c.globalFn = mapOf(mapOf(t["Globals"])["Function"])

	c.checkRefs()
	c.checkFunctions()
	c.checkAPI()
	c.checkTables()
	c.checkStreamSource()
	c.checkIAM()
	c.checkOutputs()
	c.checkLogGroups()
	c.checkStageSettings()
	c.checkAlarms()
	c.checkSecrets()
	c.checkRetention()
	c.checkTracing()
	c.checkPushPacing()
	return c.problems
}

type checker struct {
	t        Template
	cfg      Config
	res      map[string]map[string]any
	params   map[string]map[string]any
	conds    map[string]any
	globalFn map[string]any
	problems []Problem

	fnByHandler map[string]string // handler → function
	tables      map[string]string // role → table
	api         string            // the WebSocket API
	stage       string            // its stage
	stageParam  string            // the parameter naming the stage, if any
	dlq         string            // the stream's on-failure queue
	endpoint    map[string]string // function → its management endpoint Sub string
	secretParam string            // the parameter naming the HS256 secret's SSM parameter
}

func (c *checker) add(check, where, format string, args ...any) {
	c.problems = append(c.problems, Problem{Check: check, Where: where, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) props(id string) map[string]any { return mapOf(c.res[id]["Properties"]) }

// ofType lists the resources of a type, sorted.
func (c *checker) ofType(typ string) []string {
	var ids []string
	for id, r := range c.res {
		if strOf(r["Type"]) == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (c *checker) isType(id, typ string) bool {
	return c.res[id] != nil && strOf(c.res[id]["Type"]) == typ
}

// fnProp is a function's property, else the Globals' one.
func (c *checker) fnProp(id, key string) any {
	if v, ok := c.props(id)[key]; ok {
		return v
	}
	return c.globalFn[key]
}

// fnEnv is a function's environment, the Globals' merged under its own.
func (c *checker) fnEnv(id string) map[string]any {
	env := map[string]any{}
	maps.Copy(env, mapOf(mapOf(c.globalFn["Environment"])["Variables"]))
	maps.Copy(env, mapOf(mapOf(c.props(id)["Environment"])["Variables"]))
	return env
}

func (c *checker) handlerOf(fn string) string {
	for h, id := range c.fnByHandler {
		if id == fn {
			return h
		}
	}
	return ""
}

// ---------------------------------------------------------------- refs

// implicit are the resources SAM adds that a template may name: the
// execution role of each function that does not bring its own.
func (c *checker) implicit() map[string]bool {
	out := map[string]bool{}
	for _, id := range c.ofType("AWS::Serverless::Function") {
		if _, ok := c.props(id)["Role"]; !ok {
			out[id+"Role"] = true
		}
	}
	return out
}

func (c *checker) checkRefs() {
	implicit := c.implicit()
	isRes := func(n string) bool { return c.res[n] != nil || implicit[n] }
	isRef := func(n string) bool { return isRes(n) || c.params[n] != nil || slices.Contains(pseudoParams, n) }
	var walk func(where string, v any)
	walk = func(where string, v any) {
		if fn, arg, ok := intrinsic(v); ok {
			switch fn {
			case "Ref":
				if n := strOf(arg); !isRef(n) {
					c.add(CheckRef, where, "Ref %q names no resource, parameter or pseudo parameter", n)
				}
				return
			case "Fn::GetAtt":
				if res, attr, ok := getAttOf(v); !ok || !isRes(res) {
					c.add(CheckRef, where, "GetAtt %q.%q names no resource", res, attr)
				}
				return
			case "Fn::Sub":
				s, vars, ok := subOf(v)
				if !ok {
					c.add(CheckRef, where, "malformed Fn::Sub %v", arg)
					return
				}
				for _, n := range subNames(s) {
					if _, local := vars[n]; local {
						continue
					}
					if res, _, dotted := strings.Cut(n, "."); dotted && !strings.HasPrefix(n, "AWS::") {
						if !isRes(res) {
							c.add(CheckRef, where, "Sub ${%s} names no resource", n)
						}
					} else if !isRef(n) {
						c.add(CheckRef, where, "Sub ${%s} names no resource, parameter or pseudo parameter", n)
					}
				}
				for _, k := range slices.Sorted(maps.Keys(vars)) {
					walk(where, vars[k])
				}
				return
			case "Fn::If":
				l := listOf(arg)
				if len(l) != 3 {
					c.add(CheckRef, where, "Fn::If wants 3 arguments, has %d", len(l))
					return
				}
				if n := strOf(l[0]); c.conds[n] == nil {
					c.add(CheckRef, where, "Fn::If condition %q is not in Conditions", n)
				}
				walk(where, l[1])
				walk(where, l[2])
				return
			case "Condition":
				if n := strOf(arg); c.conds[n] == nil {
					c.add(CheckRef, where, "Condition %q is not in Conditions", n)
				}
				return
			}
			walk(where, arg)
			return
		}
		switch v := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				walk(where, v[k])
			}
		case []any:
			for _, e := range v {
				walk(where, e)
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.res)) {
		r := c.res[id]
		if n, ok := r["Condition"]; ok && c.conds[strOf(n)] == nil {
			c.add(CheckRef, id, "Condition %q is not in Conditions", strOf(n))
		}
		for _, d := range stringsOf(r["DependsOn"]) {
			if !isRes(d) {
				c.add(CheckRef, id, "DependsOn %q names no resource", d)
			}
		}
		walk(id, r["Properties"])
		walk(id, r["Metadata"])
	}
	for _, sec := range []string{"Conditions", "Outputs", "Globals"} {
		m := mapOf(c.t[sec])
		for _, k := range slices.Sorted(maps.Keys(m)) {
			walk(sec+"."+k, m[k])
		}
	}
}

// ----------------------------------------------------------- functions

func (c *checker) checkFunctions() {
	c.endpoint = map[string]string{}
	for _, id := range c.ofType("AWS::Serverless::Function") {
		h := strOf(c.fnProp(id, "Handler"))
		switch {
		case !slices.Contains(c.cfg.Handlers, h):
			c.add(CheckFunction, id, "Handler %q is none of the bootstrap's %v", h, c.cfg.Handlers)
		case c.fnByHandler[h] != "":
			c.add(CheckFunction, id, "Handler %q is also %s's", h, c.fnByHandler[h])
		default:
			c.fnByHandler[h] = id
		}
		if rt := strOf(c.fnProp(id, "Runtime")); rt != "provided.al2023" {
			c.add(CheckFunction, id, "Runtime %q, want provided.al2023 (the bootstrap is a custom runtime)", rt)
		}
		c.checkArch(id)
		c.checkMemory(id)
		timeout, ok := intOf(c.fnProp(id, "Timeout"))
		if !ok {
			c.add(CheckFunction, id, "no Timeout")
		} else if h == hRoute && timeout >= 29 {
			c.add(CheckFunction, id, "Timeout %d s: want it below API Gateway's 29 s integration timeout", timeout)
		}
		c.checkBuild(id, h)
		c.checkEnv(id, h)
	}
	for _, h := range c.cfg.Handlers {
		if c.fnByHandler[h] == "" {
			c.add(CheckFunction, "Resources", "no function has Handler %q", h)
		}
	}
}

// checkMemory: each function's memory is a parameter of its own (their
// work differs, so do their best sizes), within Lambda's 128 to 10,240 MB.
func (c *checker) checkMemory(id string) {
	p := refOf(c.fnProp(id, "MemorySize"))
	if p == "" || c.params[p] == nil {
		c.add(CheckFunction, id, "MemorySize is not a parameter")
		return
	}
	for _, other := range c.ofType("AWS::Serverless::Function") {
		if other < id && refOf(c.fnProp(other, "MemorySize")) == p {
			c.add(CheckFunction, id, "MemorySize parameter %s is also %s's: each function's memory is its own setting", p, other)
		}
	}
	d, ok := intOf(c.params[p]["Default"])
	lo, _ := intOf(c.params[p]["MinValue"])
	hi, _ := intOf(c.params[p]["MaxValue"])
	if !ok || d < 128 || d > 10240 || lo < 128 || hi > 10240 || hi < lo {
		c.add(CheckFunction, p, "Default %v, MinValue %v, MaxValue %v: want a default within 128 to 10240 MB, the bounds Lambda's", c.params[p]["Default"], c.params[p]["MinValue"], c.params[p]["MaxValue"])
	}
}

func (c *checker) checkArch(id string) {
	archs := listOf(c.fnProp(id, "Architectures"))
	if len(archs) != 1 || refOf(archs[0]) == "" || c.params[refOf(archs[0])] == nil {
		c.add(CheckFunction, id, "Architectures is not [!Ref <parameter>]")
		return
	}
	name := refOf(archs[0])
	p := c.params[name]
	allowed := stringsOf(p["AllowedValues"])
	if !slices.Contains(allowed, "arm64") || !slices.Contains(allowed, "x86_64") || len(allowed) != 2 {
		c.add(CheckFunction, name, "AllowedValues %v, want arm64 and x86_64", allowed)
	}
	if d := strOf(p["Default"]); d != "arm64" {
		c.add(CheckFunction, name, "Default %q, want arm64", d)
	} else if c.cfg.Make != nil && !c.cfg.Make.ArchFromTemplate && c.cfg.Make.DefaultArch != d {
		c.add(CheckFunction, name, "Default %q, but sam.mk builds %q unless told: the packages would not match", d, c.cfg.Make.DefaultArch)
	}
}

func (c *checker) checkBuild(id, handler string) {
	if m := strOf(mapOf(c.res[id]["Metadata"])["BuildMethod"]); m != "makefile" {
		c.add(CheckBuild, id, "Metadata BuildMethod %q, want makefile", m)
	}
	uri, ok := c.fnProp(id, "CodeUri").(string)
	if !ok {
		c.add(CheckBuild, id, "CodeUri is not a path")
	} else if got, want := absClean(filepath.Join(c.cfg.TemplateDir, uri)), absClean(c.cfg.RepoRoot); got != want {
		c.add(CheckBuild, id, "CodeUri %q is %s, not the repository root %s where the Makefile is", uri, got, want)
	}
	if c.cfg.Make == nil {
		return
	}
	if !c.cfg.Make.Targets[id] {
		c.add(CheckBuild, id, "sam.mk has no target build-%s", id)
	}
	if got := c.cfg.Make.Handlers[id]; got != handler {
		c.add(CheckBuild, id, "sam.mk builds %q for build-%s, but its Handler is %q", got, id, handler)
	}
}

func absClean(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// endpointSub is the management endpoint's form; its two names are
// checked once the API and stage are known.
var endpointSub = regexp.MustCompile(`^https://\$\{(\w+)\}\.execute-api\.\$\{AWS::Region\}\.\$\{AWS::URLSuffix\}/\$\{(\w+)\}$`)

func (c *checker) checkEnv(id, h string) {
	env := c.fnEnv(id)
	if h != hAuthorizer {
		for _, k := range slices.Sorted(maps.Keys(env)) {
			if strings.HasPrefix(k, "WSBIND_AUTH_") {
				c.add(CheckEnv, id, "%s: token settings belong to the authorizer alone", k)
			}
		}
	}
	switch h {
	case hConnect, hRoute, hStreamFanout, hPush:
		if b := strOf(env["WSBIND_BACKEND"]); b != "dynamodb" {
			c.add(CheckEnv, id, "WSBIND_BACKEND %q, want dynamodb", b)
		}
		roles := []string{tItems, tConnections, tSubscriptions}
		switch h {
		case hPush:
			// It reads no item: it forgets gone connections.
			roles = []string{tConnections, tSubscriptions}
		case hRoute:
			// Only writes, which only the route function serves, take
			// idempotency keys; a resumed subscription reads the history.
			roles = append(roles, tIdempotency, tHistory)
		case hStreamFanout:
			// The fan-out records the history.
			roles = append(roles, tHistory)
		}
		for _, role := range roles {
			v := tableVars[role]
			tbl := refOf(env[v])
			switch {
			case !c.isType(tbl, "AWS::DynamoDB::Table"):
				c.add(CheckEnv, id, "%s is not a Ref to a table", v)
			case c.tables[role] == "":
				c.tables[role] = tbl
			case c.tables[role] != tbl:
				c.add(CheckEnv, id, "%s names %s, another function's names %s", v, tbl, c.tables[role])
			}
		}
	case hAuthorizer:
		for _, v := range []string{"WSBIND_AUTH_HS256_SECRET_PARAM", "WSBIND_AUTH_JWKS_URL", "WSBIND_AUTH_ISSUER", "WSBIND_AUTH_AUDIENCE"} {
			if p := refOf(env[v]); c.params[p] == nil {
				c.add(CheckEnv, id, "%s is not a Ref to a parameter", v)
			} else if v == "WSBIND_AUTH_HS256_SECRET_PARAM" {
				c.secretParam = p
			}
		}
	}
	switch h {
	case hRoute:
		if p := refOf(env["WSBIND_PAGE_SIZE"]); c.params[p] == nil {
			c.add(CheckEnv, id, "WSBIND_PAGE_SIZE is not a Ref to a parameter")
		}
	}
	switch h {
	case hStreamFanout, hPush:
		for _, v := range pushVars {
			if p := refOf(env[v]); c.params[p] == nil {
				c.add(CheckEnv, id, "%s is not a Ref to a parameter", v)
			}
		}
	}
	if h == hStreamFanout {
		if fn := refOf(env["WSBIND_PUSH_WORKER_FUNCTION"]); !c.isType(fn, "AWS::Serverless::Function") || strOf(c.fnProp(fn, "Handler")) != hPush {
			c.add(CheckEnv, id, "WSBIND_PUSH_WORKER_FUNCTION is not a Ref to the push function: a push to many connections would be posted by the fan-out alone, at its share of the quota")
		}
	}
	switch h {
	case hStreamFanout, hRoute, hPush:
		s, _, _ := subOf(env["WSBIND_MANAGEMENT_ENDPOINT"])
		if !endpointSub.MatchString(s) {
			c.add(CheckEnv, id, "WSBIND_MANAGEMENT_ENDPOINT is not https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}")
		} else {
			c.endpoint[id] = s
		}
	}
}

// pushVars are the fan-out's pacing settings, which the fan-out and
// the push workers must both be told.
var pushVars = []string{"WSBIND_PUSH_QUOTA", "WSBIND_PUSH_WORKERS", "WSBIND_FANOUT_CONCURRENCY"}

// checkPushPacing: every posting process paces itself at
// 0.98 x quota / (workers + fan-out concurrency) - 1 requests/s, so the
// posts add up to the quota only if the counts the processes are told are
// the counts Lambda runs at most: the push function's reserved
// concurrency is the parameter both functions' WSBIND_PUSH_WORKERS name,
// the fan-out's is the one both WSBIND_FANOUT_CONCURRENCY name, and both
// are told the same quota.
func (c *checker) checkPushPacing() {
	fan, push := c.fnByHandler[hStreamFanout], c.fnByHandler[hPush]
	if fan == "" || push == "" {
		return // reported already
	}
	fanEnv, pushEnv := c.fnEnv(fan), c.fnEnv(push)
	same := func(v string) string {
		a, b := refOf(fanEnv[v]), refOf(pushEnv[v])
		if a == "" || b == "" {
			return "" // reported already
		}
		if a != b {
			c.add(CheckPushPacing, push, "%s is %s, %s's is %s: the two would split different figures, and together post more than the quota", v, b, fan, a)
			return ""
		}
		return a
	}
	same("WSBIND_PUSH_QUOTA")
	// The fan-out waits for its workers' answers.
	if ft, ok := intOf(c.props(fan)["Timeout"]); ok {
		if pt, ok := intOf(c.props(push)["Timeout"]); ok && ft < pt {
			c.add(CheckPushPacing, fan, "Timeout %d s, below %s's %d s: the fan-out would time out while its push workers still post, and the change be pushed again", ft, push, pt)
		}
	}
	for _, r := range []struct{ fn, v, why string }{
		{push, "WSBIND_PUSH_WORKERS", "more push workers could run than the pacing counts, and post more than the quota"},
		{fan, "WSBIND_FANOUT_CONCURRENCY", "more fan-out invocations could run than the pacing counts, and post more than the quota"},
	} {
		p := same(r.v)
		if p == "" {
			continue
		}
		if got := refOf(c.props(r.fn)["ReservedConcurrentExecutions"]); got != p {
			c.add(CheckPushPacing, r.fn, "ReservedConcurrentExecutions is not !Ref %s, the parameter %s names: %s", p, r.v, r.why)
		}
		if lo, ok := intOf(c.params[p]["MinValue"]); !ok || lo < 1 {
			c.add(CheckPushPacing, p, "MinValue %v, want at least 1: a reserved concurrency of 0 stops the function", c.params[p]["MinValue"])
		}
	}
}

// ----------------------------------------------------------------- API

func (c *checker) checkAPI() {
	var apis []string
	for _, id := range c.ofType("AWS::ApiGatewayV2::Api") {
		if strOf(c.props(id)["ProtocolType"]) == "WEBSOCKET" {
			apis = append(apis, id)
		}
	}
	if len(apis) != 1 {
		c.add(CheckAPI, "Resources", "%d WebSocket APIs (AWS::ApiGatewayV2::Api, ProtocolType WEBSOCKET), want 1", len(apis))
		return
	}
	c.api = apis[0]
	if e := strOf(c.props(c.api)["RouteSelectionExpression"]); e != `\$default` {
		c.add(CheckAPI, c.api, `RouteSelectionExpression %q: want the static \$default, so that every message reaches $default`, e)
	}

	routes := map[string]string{} // key → route
	for _, id := range c.ofType("AWS::ApiGatewayV2::Route") {
		p := c.props(id)
		if refOf(p["ApiId"]) != c.api {
			c.add(CheckRoute, id, "ApiId is not a Ref to %s", c.api)
			continue
		}
		key := strOf(p["RouteKey"])
		switch {
		case routeHandlers[key] == "":
			c.add(CheckRoute, id, "route %q: every message goes to $default, so it would never be selected", key)
		case routes[key] != "":
			c.add(CheckRoute, id, "route %q is also %s", key, routes[key])
		default:
			routes[key] = id
		}
	}
	for _, key := range slices.Sorted(maps.Keys(routeHandlers)) {
		if routes[key] == "" {
			c.add(CheckRoute, c.api, "no %s route", key)
		}
	}
	c.checkStage(routes)
	perms := c.permissions()
	for _, key := range slices.Sorted(maps.Keys(routes)) {
		route := routes[key]
		fn := c.checkIntegration(route, key)
		if fn != "" && !c.permitted(perms, fn, "STAGE/"+key, map[string]string{c.stage: "STAGE", c.stageParam: "STAGE"}) {
			c.add(CheckPermission, route, "no AWS::Lambda::Permission lets %s invoke %s for %s (SourceArn scoped to this API)", c.api, fn, key)
		}
	}
	if r := routes["$connect"]; r != "" {
		c.checkAuthorizer(r, perms)
	}
	if r := routes["$default"]; r != "" {
		c.checkRouteResponse(r)
	}
	for _, id := range slices.Sorted(maps.Keys(c.endpoint)) {
		m := endpointSub.FindStringSubmatch(c.endpoint[id])
		if m[1] != c.api || (m[2] != c.stage && m[2] != c.stageParam) {
			c.add(CheckEnv, id, "WSBIND_MANAGEMENT_ENDPOINT names ${%s} and ${%s}, not %s and its stage", m[1], m[2], c.api)
		}
	}
}

// checkIntegration checks a route's target and returns its function.
func (c *checker) checkIntegration(route, key string) string {
	integ := c.targetOf(c.props(route)["Target"])
	if !c.isType(integ, "AWS::ApiGatewayV2::Integration") {
		c.add(CheckIntegration, route, "Target is not integrations/<an AWS::ApiGatewayV2::Integration of the template>")
		return ""
	}
	p := c.props(integ)
	if refOf(p["ApiId"]) != c.api {
		c.add(CheckIntegration, integ, "ApiId is not a Ref to %s", c.api)
	}
	if typ := strOf(p["IntegrationType"]); typ != "AWS_PROXY" {
		c.add(CheckIntegration, integ, "IntegrationType %q, want AWS_PROXY", typ)
	}
	fn := c.lambdaURI(p["IntegrationUri"])
	if fn == "" {
		c.add(CheckIntegration, integ, "IntegrationUri is not the invocation URI of a function of the template")
		return ""
	}
	if want := routeHandlers[key]; c.handlerOf(fn) != want {
		c.add(CheckIntegration, route, "%s goes to %s (Handler %q), want the %s function", key, fn, c.handlerOf(fn), want)
	}
	return fn
}

// targetOf is the integration of a route's Target: "integrations/${X}",
// or Join "/" of "integrations" and Ref X.
func (c *checker) targetOf(v any) string {
	if s, vars, ok := subOf(v); ok {
		names := subNames(s)
		if len(names) == 1 && s == "integrations/${"+names[0]+"}" {
			if local, ok := vars[names[0]]; ok {
				return refOf(local)
			}
			return names[0]
		}
		return ""
	}
	if fn, arg, ok := intrinsic(v); ok && fn == "Fn::Join" {
		l := listOf(arg)
		if len(l) == 2 && strOf(l[0]) == "/" {
			parts := listOf(l[1])
			if len(parts) == 2 && strOf(parts[0]) == "integrations" {
				return refOf(parts[1])
			}
		}
	}
	return ""
}

var lambdaURI = regexp.MustCompile(`^arn:(?:aws|\$\{AWS::Partition\}):apigateway:\$\{AWS::Region\}:lambda:path/2015-03-31/functions/\$\{(\w+)\.Arn\}/invocations$`)

// lambdaURI is the function of a Lambda invocation URI.
func (c *checker) lambdaURI(v any) string {
	s, _, _ := subOf(v)
	m := lambdaURI.FindStringSubmatch(s)
	if m == nil || !c.isType(m[1], "AWS::Serverless::Function") {
		return ""
	}
	return m[1]
}

func (c *checker) checkAuthorizer(route string, perms []permission) {
	p := c.props(route)
	if t := strOf(p["AuthorizationType"]); t != "CUSTOM" {
		c.add(CheckAuthorizer, route, "AuthorizationType %q, want CUSTOM (the Lambda REQUEST authorizer)", t)
	}
	a := refOf(p["AuthorizerId"])
	if !c.isType(a, "AWS::ApiGatewayV2::Authorizer") {
		c.add(CheckAuthorizer, route, "AuthorizerId is not a Ref to an AWS::ApiGatewayV2::Authorizer")
		return
	}
	ap := c.props(a)
	if refOf(ap["ApiId"]) != c.api {
		c.add(CheckAuthorizer, a, "ApiId is not a Ref to %s", c.api)
	}
	if t := strOf(ap["AuthorizerType"]); t != "REQUEST" {
		c.add(CheckAuthorizer, a, "AuthorizerType %q, want REQUEST", t)
	}
	if src := ap["IdentitySource"]; src != nil && len(stringsOf(src)) > 0 {
		c.add(CheckAuthorizer, a, "IdentitySource %v: API Gateway answers 401 without calling the authorizer when a request lacks it, which refuses anonymous connections", stringsOf(src))
	}
	fn := c.lambdaURI(ap["AuthorizerUri"])
	if fn == "" || c.handlerOf(fn) != hAuthorizer {
		c.add(CheckAuthorizer, a, "AuthorizerUri is not the invocation URI of the authorizer function")
		return
	}
	if !c.permitted(perms, fn, "authorizers/AUTHZ", map[string]string{a: "AUTHZ"}) {
		c.add(CheckPermission, a, "no AWS::Lambda::Permission lets %s invoke %s as authorizer %s (SourceArn .../authorizers/${%s})", c.api, fn, a, a)
	}
}

func (c *checker) checkRouteResponse(route string) {
	if e := strOf(c.props(route)["RouteResponseSelectionExpression"]); e != "$default" {
		c.add(CheckRouteResponse, route, "RouteResponseSelectionExpression %q, want $default: without it the route function's body is not sent back", e)
	}
	for _, id := range c.ofType("AWS::ApiGatewayV2::RouteResponse") {
		p := c.props(id)
		if refOf(p["RouteId"]) == route && refOf(p["ApiId"]) == c.api && strOf(p["RouteResponseKey"]) == "$default" {
			return
		}
	}
	c.add(CheckRouteResponse, route, "no AWS::ApiGatewayV2::RouteResponse with RouteResponseKey $default: the reply would be dropped")
}

func (c *checker) checkStage(routes map[string]string) {
	var stages []string
	for _, id := range c.ofType("AWS::ApiGatewayV2::Stage") {
		if refOf(c.props(id)["ApiId"]) == c.api {
			stages = append(stages, id)
		}
	}
	if len(stages) != 1 {
		c.add(CheckStage, c.api, "%d stages, want 1", len(stages))
		return
	}
	c.stage = stages[0]
	p := c.props(c.stage)
	c.stageParam = refOf(p["StageName"])
	need := slices.Sorted(maps.Values(routes))
	for _, id := range c.ofType("AWS::ApiGatewayV2::RouteResponse") {
		if refOf(c.props(id)["ApiId"]) == c.api {
			need = append(need, id)
		}
	}
	deployer := c.stage
	if auto, _ := boolOf(p["AutoDeploy"]); !auto {
		deployer = refOf(p["DeploymentId"])
		if !c.isType(deployer, "AWS::ApiGatewayV2::Deployment") {
			c.add(CheckStage, c.stage, "neither AutoDeploy nor a DeploymentId naming an AWS::ApiGatewayV2::Deployment: nothing is deployed")
			return
		}
	}
	deps := stringsOf(c.res[deployer]["DependsOn"])
	for _, r := range need {
		if !slices.Contains(deps, r) {
			c.add(CheckStage, deployer, "does not DependsOn %s: the deployment may be made without it", r)
		}
	}
}

// permission is an AWS::Lambda::Permission for API Gateway, its SourceArn
// past "arn:...:execute-api:...:${Api}/".
type permission struct{ id, fn, rest string }

var apiArnPrefix = regexp.MustCompile(`^arn:(?:aws|\$\{AWS::Partition\}):execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:\$\{(\w+)\}/`)

func (c *checker) permissions() []permission {
	var out []permission
	for _, id := range c.ofType("AWS::Lambda::Permission") {
		p := c.props(id)
		if strOf(p["Principal"]) != "apigateway.amazonaws.com" {
			continue
		}
		fn := refOf(p["FunctionName"])
		if res, attr, ok := getAttOf(p["FunctionName"]); ok && attr == "Arn" {
			fn = res
		}
		if a := strOf(p["Action"]); a != "lambda:InvokeFunction" {
			c.add(CheckPermission, id, "Action %q, want lambda:InvokeFunction", a)
			continue
		}
		s, _, _ := subOf(p["SourceArn"])
		m := apiArnPrefix.FindStringSubmatch(s)
		if m == nil || m[1] != c.api {
			c.add(CheckPermission, id, "SourceArn %v is not scoped to %s (arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${%s}/...)", p["SourceArn"], c.api, c.api)
			continue
		}
		out = append(out, permission{id: id, fn: fn, rest: s[len(m[0]):]})
	}
	return out
}

// permitted reports whether one of perms lets API Gateway invoke fn for
// path, a SourceArn's part after the API, with the ${names} of subst
// standing for their values.
func (c *checker) permitted(perms []permission, fn, path string, subst map[string]string) bool {
	for _, p := range perms {
		if p.fn != fn {
			continue
		}
		pattern := subVar.ReplaceAllStringFunc(p.rest, func(m string) string {
			if v, ok := subst[m[2:len(m)-1]]; ok && m[2:len(m)-1] != "" {
				return v
			}
			return m
		})
		if arnLike(pattern, path) {
			return true
		}
	}
	return false
}

// arnLike matches s against an IAM ArnLike pattern: * any run of
// characters, ? any one.
func arnLike(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if arnLike(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && arnLike(pattern[1:], s[1:])
	}
	return s != "" && s[0] == pattern[0] && arnLike(pattern[1:], s[1:])
}

// -------------------------------------------------------------- tables

func (c *checker) checkTables() {
	for _, role := range slices.Sorted(maps.Keys(tableSpecs)) {
		id := c.tables[role]
		if id == "" {
			c.add(CheckTable, "Resources", "no %s table: no function's %s names one", role, tableVars[role])
			continue
		}
		spec := tableSpecs[role]
		p := c.props(id)
		if b := strOf(p["BillingMode"]); b != "PAY_PER_REQUEST" {
			c.add(CheckTable, id, "BillingMode %q, want PAY_PER_REQUEST", b)
		}
		c.checkKeys(id, "", p["KeySchema"], spec.hash, spec.rng)
		defs := map[string]string{}
		for _, d := range listOf(p["AttributeDefinitions"]) {
			defs[strOf(mapOf(d)["AttributeName"])] = strOf(mapOf(d)["AttributeType"])
		}
		keyAttrs := []string{spec.hash, spec.rng}
		if spec.gsi != nil {
			keyAttrs = append(keyAttrs, spec.gsi.hash, spec.gsi.rng)
		}
		for _, a := range keyAttrs {
			if a != "" && defs[a] != "S" {
				c.add(CheckTable, id, "AttributeDefinitions: %s is %q, want S", a, defs[a])
			}
		}
		ttl := mapOf(p["TimeToLiveSpecification"])
		enabled, _ := boolOf(ttl["Enabled"])
		if spec.ttl != "" && (strOf(ttl["AttributeName"]) != spec.ttl || !enabled) {
			c.add(CheckTable, id, "TTL is not enabled on attribute %s", spec.ttl)
		}
		view := strOf(mapOf(p["StreamSpecification"])["StreamViewType"])
		if view != spec.stream {
			c.add(CheckTable, id, "stream view type %q, want %q", view, spec.stream)
		}
		if g := spec.gsi; g != nil {
			found := false
			for _, idx := range listOf(p["GlobalSecondaryIndexes"]) {
				m := mapOf(idx)
				if strOf(m["IndexName"]) != g.name {
					continue
				}
				found = true
				c.checkKeys(id, " index "+g.name, m["KeySchema"], g.hash, g.rng)
				if pt := strOf(mapOf(m["Projection"])["ProjectionType"]); pt != g.projection {
					c.add(CheckTable, id, "index %s projects %q, want %s", g.name, pt, g.projection)
				}
			}
			if !found {
				c.add(CheckTable, id, "no global secondary index %s", g.name)
			}
		}
	}
}

func (c *checker) checkKeys(id, what string, schema any, hash, rng string) {
	var gotHash, gotRange string
	for _, k := range listOf(schema) {
		switch strOf(mapOf(k)["KeyType"]) {
		case "HASH":
			gotHash = strOf(mapOf(k)["AttributeName"])
		case "RANGE":
			gotRange = strOf(mapOf(k)["AttributeName"])
		}
	}
	if gotHash != hash || gotRange != rng {
		c.add(CheckTable, id, "key%s (%q, %q), want partition %q and sort %q", what, gotHash, gotRange, hash, rng)
	}
}

// ------------------------------------------------------- stream source

func (c *checker) checkStreamSource() {
	fan, items := c.fnByHandler[hStreamFanout], c.tables[tItems]
	if fan == "" || items == "" {
		return // reported already
	}
	var esm string
	for _, id := range c.ofType("AWS::Lambda::EventSourceMapping") {
		p := c.props(id)
		src, attr, _ := getAttOf(p["EventSourceArn"])
		if refersTo(p["FunctionName"], fan) && src == items && attr == "StreamArn" {
			if esm != "" {
				c.add(CheckStreamSource, id, "a second mapping of %s's stream: a shard allows 2 readers", items)
			}
			esm = id
		}
	}
	if esm == "" {
		c.add(CheckStreamSource, fan, "no AWS::Lambda::EventSourceMapping from %s's StreamArn to %s", items, fan)
		return
	}
	p := c.props(esm)
	if s := strOf(p["StartingPosition"]); s != "LATEST" {
		c.add(CheckStreamSource, esm, "StartingPosition %q, want LATEST", s)
	}
	intIn := func(key string, lo, hi int, why string) {
		n, ok := intOf(p[key])
		if !ok || n < lo || n > hi {
			c.add(CheckStreamSource, esm, "%s %v, want %d to %d: %s", key, p[key], lo, hi, why)
		}
	}
	intIn("BatchSize", 1, 10000, "set it")
	intIn("MaximumBatchingWindowInSeconds", 0, 300, "set it")
	intIn("MaximumRetryAttempts", 0, 10000, "the default, infinite, lets one bad record stall its shard for 24 h")
	intIn("MaximumRecordAgeInSeconds", 60, 604800, "the default, infinite, lets one bad record stall its shard for 24 h")
	if b, _ := boolOf(p["BisectBatchOnFunctionError"]); !b {
		c.add(CheckStreamSource, esm, "BisectBatchOnFunctionError is not true")
	}
	if !slices.Contains(stringsOf(p["FunctionResponseTypes"]), "ReportBatchItemFailures") {
		c.add(CheckStreamSource, esm, "FunctionResponseTypes lacks ReportBatchItemFailures: the function's partial batch responses would be ignored")
	}
	q, attr, _ := getAttOf(mapOf(mapOf(p["DestinationConfig"])["OnFailure"])["Destination"])
	if attr != "Arn" || !c.isType(q, "AWS::SQS::Queue") {
		c.add(CheckStreamSource, esm, "DestinationConfig.OnFailure.Destination is not the Arn of an AWS::SQS::Queue of the template")
		return
	}
	c.dlq = q
}

// ----------------------------------------------------------------- IAM

// connectionsArn is the resource execute-api:ManageConnections may name:
// this API's stage, @connections by one method, POST (a push) or DELETE
// (closing a stuck connection).
var connectionsArn = regexp.MustCompile(`^arn:(?:aws|\$\{AWS::Partition\}):execute-api:\$\{AWS::Region\}:\$\{AWS::AccountId\}:\$\{(\w+)\}/\$\{(\w+)\}/(POST|DELETE)/@connections/\*$`)

func (c *checker) checkIAM() {
	for _, id := range c.ofType("AWS::Serverless::Function") {
		h := c.handlerOf(id)
		p := c.props(id)
		if _, ok := p["Role"]; ok {
			c.add(CheckIAMPolicy, id, "Role is set: its policies are not in the template to check")
		}
		events := mapOf(p["Events"])
		for _, e := range slices.Sorted(maps.Keys(events)) {
			if t := strOf(mapOf(events[e])["Type"]); slices.Contains(managedPolicyEvents, t) {
				c.add(CheckIAMPolicy, id, "event %s (Type %s): SAM attaches an AWS managed policy that grants its actions on every resource; use an AWS::Lambda::EventSourceMapping", e, t)
			}
		}
		granted := map[string]bool{}
		for i, pol := range listOf(p["Policies"]) {
			doc := mapOf(pol)
			if doc["Statement"] == nil {
				c.add(CheckIAMPolicy, id, "Policies[%d] is not an inline policy document: only those can be checked", i)
				continue
			}
			stmts := listOf(doc["Statement"])
			if stmts == nil {
				stmts = []any{doc["Statement"]}
			}
			for j, st := range stmts {
				// A statement under Fn::If is checked as if granted.
				if fn, arg, ok := intrinsic(st); ok && fn == "Fn::If" {
					for _, b := range listOf(arg)[1:] {
						if refOf(b) != "AWS::NoValue" {
							c.statement(id, fmt.Sprintf("Policies[%d].Statement[%d]", i, j), mapOf(b), granted)
						}
					}
					continue
				}
				c.statement(id, fmt.Sprintf("Policies[%d].Statement[%d]", i, j), mapOf(st), granted)
			}
		}
		if h == "" {
			continue
		}
		want := map[string]bool{}
		for _, g := range wantGrants[h] {
			want[g] = true
			if !granted[g] {
				c.add(CheckIAMGrants, id, "lacks %s", g)
			}
		}
		for _, g := range slices.Sorted(maps.Keys(granted)) {
			if !want[g] {
				c.add(CheckIAMGrants, id, "grants %s, beyond what the %s function needs", g, h)
			}
		}
	}
}

func (c *checker) statement(fn, where string, st map[string]any, granted map[string]bool) {
	if _, ok := st["NotAction"]; ok {
		c.add(CheckIAMPolicy, fn, "%s: NotAction grants everything else", where)
	}
	if _, ok := st["NotResource"]; ok {
		c.add(CheckIAMPolicy, fn, "%s: NotResource grants everything else", where)
	}
	if strOf(st["Effect"]) != "Allow" {
		return
	}
	actions := stringsOf(st["Action"])
	resources := listOf(st["Resource"])
	if resources == nil {
		resources = []any{st["Resource"]}
	}
	scoped := slices.ContainsFunc(actions, func(a string) bool {
		a = strings.ToLower(a)
		return strings.HasPrefix(a, "dynamodb:") || strings.HasPrefix(a, "execute-api:") || strings.HasPrefix(a, "lambda:") || a == "*"
	})
	for _, a := range actions {
		if strings.Contains(a, "*") {
			c.add(CheckIAMWildcard, fn, "%s: action %q", where, a)
		}
	}
	for _, r := range resources {
		if strOf(r) == "*" && scoped {
			c.add(CheckIAMWildcard, fn, `%s: Resource "*" with %v`, where, actions)
		}
	}
	for _, a := range actions {
		for _, r := range resources {
			key := c.resourceKey(r)
			if strings.EqualFold(a, "kms:Decrypt") && c.params[refOf(r)] != nil {
				// A key named by a parameter, usable only through
				// Parameter Store.
				key = "secret-key"
				cond := mapOf(mapOf(st["Condition"])["StringEquals"])
				if s, _, _ := subOf(cond["kms:ViaService"]); strings.HasPrefix(s, "ssm.") {
					key += " via ssm"
				}
			}
			if strings.EqualFold(a, "execute-api:ManageConnections") && key != "POST @connections" && key != "DELETE @connections" {
				c.add(CheckIAMManageConnections, fn, "%s: ManageConnections on %s, want only arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${%s}/${%s}/POST/@connections/* and .../DELETE/@connections/*", where, key, c.api, c.stage)
			}
			granted[a+" "+key] = true
		}
	}
}

// resourceKey names a statement's resource by its role: a table's role,
// "<role>/index/<name>", "<role>/stream/*", "dlq", "POST @connections",
// "DELETE @connections", "push" (the push function's Arn); any
// other resource by its text.
func (c *checker) resourceKey(r any) string {
	role := func(id string) string {
		for rl, t := range c.tables {
			if t == id {
				return rl
			}
		}
		if id != "" && id == c.dlq {
			return "dlq"
		}
		return ""
	}
	if res, attr, ok := getAttOf(r); ok {
		if rl := role(res); rl != "" && attr == "Arn" {
			return rl
		}
		if rl := role(res); rl != "" && attr == "StreamArn" {
			return rl + "/stream/*"
		}
		if attr == "Arn" && c.handlerOf(res) == hPush {
			return "push"
		}
		return res + "." + attr
	}
	if s, _, ok := subOf(r); ok {
		if m := connectionsArn.FindStringSubmatch(s); m != nil {
			if m[1] == c.api && (m[2] == c.stage || m[2] == c.stageParam) {
				return m[3] + " @connections"
			}
			return s
		}
		if c.secretParam != "" && s == "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${"+c.secretParam+"}" {
			return "hs256-secret"
		}
		names := subNames(s)
		if len(names) > 0 && strings.HasPrefix(s, "${"+names[0]+"}") {
			if res, attr, ok := strings.Cut(names[0], "."); ok && attr == "Arn" && role(res) != "" {
				return role(res) + s[len("${"+names[0]+"}"):]
			}
		}
		return s
	}
	if s, ok := r.(string); ok {
		return s
	}
	return fmt.Sprint(r)
}

// ------------------------------------------------------------- outputs

func (c *checker) checkOutputs() {
	outs := mapOf(c.t["Outputs"])
	has := func(ok func(v any) bool) bool {
		for _, o := range outs {
			if ok(mapOf(o)["Value"]) {
				return true
			}
		}
		return false
	}
	for _, scheme := range []string{"wss", "https"} {
		prefix := scheme + "://${" + c.api + "}.execute-api."
		if !has(func(v any) bool { s, _, _ := subOf(v); return strings.HasPrefix(s, prefix) }) {
			c.add(CheckOutput, "Outputs", "no output %s...", prefix)
		}
	}
	for _, role := range slices.Sorted(maps.Keys(c.tables)) {
		if t := c.tables[role]; !has(func(v any) bool { return refOf(v) == t }) {
			c.add(CheckOutput, "Outputs", "no output of the %s table's name (Ref %s)", role, t)
		}
	}
	if c.dlq != "" && !has(func(v any) bool { return refOf(v) == c.dlq }) {
		c.add(CheckOutput, "Outputs", "no output of the failure queue's URL (Ref %s)", c.dlq)
	}
}
