package lambdainit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsbind/wsbind/internal/aws/dynamo"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/testkit/apigwtest"
	"github.com/wsbind/wsbind/internal/testkit/runtimeapi"
)

// dynamoEndpoint is the DynamoDB endpoint of the end-to-end tests: the
// one AWS_ENDPOINT_URL_DYNAMODB names (dynalite under `make test`).
func dynamoEndpoint(t *testing.T) string {
	t.Helper()
	ep := os.Getenv("AWS_ENDPOINT_URL_DYNAMODB")
	if ep == "" {
		if os.Getenv("WSBIND_REQUIRE_DYNAMODB") == "1" {
			t.Fatal("WSBIND_REQUIRE_DYNAMODB=1 but AWS_ENDPOINT_URL_DYNAMODB is not set")
		}
		t.Skip("AWS_ENDPOINT_URL_DYNAMODB is not set: no DynamoDB endpoint to run against (make test starts dynalite when installed)")
	}
	return ep
}

// TestBootstrap_DynamoDB runs the real bootstrap binaries against a real
// DynamoDB endpoint and a management endpoint: route (wasm, shipped
// compiled code) subscribes one connection and creates a question in the
// tables; the question is read back from the table itself; streamfanout
// (the native build) turns the item's stream record into a push that
// reaches the subscriber through the management API.
func TestBootstrap_DynamoDB(t *testing.T) {
	endpoint := dynamoEndpoint(t)
	ctx := context.Background()
	client := dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	})
	prefix := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	tables := dynamo.Tables{Items: prefix + "-items", Connections: prefix + "-connections", Subscriptions: prefix + "-subscriptions", Idempotency: prefix + "-idempotency", History: prefix + "-history"}
	if err := dynamo.CreateTables(ctx, client, tables); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, name := range []string{tables.Items, tables.Connections, tables.Subscriptions} {
			client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		}
	})
	gw := apigwtest.New(apigwtest.Options{})
	defer gw.Close()
	gw.Connect("c-sub")
	// The connect function records every connection before its first
	// message; a subscribe of a connection not recorded takes itself back.
	if err := dynamo.New(dynamo.Config{Client: client, Tables: tables}).PutConn(ctx, store.Conn{ConnID: "c-sub"}); err != nil {
		t.Fatal(err)
	}

	env := []string{
		"WSBIND_BACKEND=dynamodb",
		"WSBIND_TABLE_ITEMS=" + tables.Items,
		"WSBIND_TABLE_CONNECTIONS=" + tables.Connections,
		"WSBIND_TABLE_SUBSCRIPTIONS=" + tables.Subscriptions,
		"AWS_ENDPOINT_URL_DYNAMODB=" + endpoint,
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
	}

	rt, err := runtimeapi.New()
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	route := start(t, filepath.Join(buildDir(t), "bootstrap"), rt,
		append([]string{"_HANDLER=route", "LAMBDA_TASK_ROOT=" + taskRoot(t, "route.wasm", "route.cache")}, env...)...)
	sub := route.invokeRoute(t, rt, messageEvent(t, "c-sub", `{"stream":"questions","payload":{"action":"subscribe","data":{"action":"create"},"request_id":"s"}}`))
	if !strings.Contains(sub, `"response_status":200`) {
		t.Fatalf("subscribe: %s", sub)
	}
	created := route.invokeRoute(t, rt, messageEvent(t, "c-author", `{"stream":"questions","payload":{"action":"create","data":{"question_text":"Stored? ✓ 𝄞"},"request_id":"c"}}`))
	var reply struct {
		Payload struct {
			Status int `json:"response_status"`
			Data   struct {
				ID string `json:"id"`
			} `json:"data"`
		} `json:"payload"`
	}
	if err := json.Unmarshal([]byte(created), &reply); err != nil || reply.Payload.Status != 201 || reply.Payload.Data.ID == "" {
		t.Fatalf("create: %s (%v)", created, err)
	}
	id := reply.Payload.Data.ID
	got := route.invokeRoute(t, rt, messageEvent(t, "c-author", `{"stream":"questions","payload":{"action":"retrieve","pk":"`+id+`","request_id":"r"}}`))
	if !strings.Contains(got, `"question_text":"Stored? ✓ 𝄞"`) || !strings.Contains(got, `"response_status":200`) {
		t.Fatalf("retrieve: %s", got)
	}

	// The item is in the items table, attribute per field.
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(tables.Items),
		Key:            map[string]types.AttributeValue{"_stream": &types.AttributeValueMemberS{Value: "questions"}, "id": &types.AttributeValueMemberS{Value: id}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil || out.Item == nil {
		t.Fatalf("the created question is not in %s: %v", tables.Items, err)
	}
	if s, ok := out.Item["question_text"].(*types.AttributeValueMemberS); !ok || s.Value != "Stored? ✓ 𝄞" {
		t.Errorf("question_text attribute: got %#v", out.Item["question_text"])
	}

	// dynalite has no streams: the INSERT record is made from the item as
	// DynamoDB Streams would carry it.
	rt2, err := runtimeapi.New()
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	fanout := start(t, nativeBootstrap(t), rt2,
		append([]string{"_HANDLER=streamfanout", "LAMBDA_TASK_ROOT=" + t.TempDir(), "WSBIND_MANAGEMENT_ENDPOINT=" + gw.Endpoint()}, env...)...)
	image := streamImage(t, out.Item)
	resp, err := rt2.Invoke(fanout.ctx, batch(record("100", "INSERT", questionKeys(id), "", image, "")))
	if err != nil || resp.Error || string(resp.Body) != `{"batchItemFailures":[]}` {
		t.Fatalf("fan-out: %s, %v\n%s", resp.Body, err, fanout.logs)
	}
	pushes := gw.Received("c-sub")
	if len(pushes) != 1 || !strings.Contains(string(pushes[0]), `"action":"create"`) || !strings.Contains(string(pushes[0]), `"pk":"`+id+`"`) {
		t.Errorf("pushes to the subscriber: got %q, want one create of %s", pushes, id)
	}
}

// streamImage writes a DynamoDB item as a stream record's image (the
// JSON of DynamoDB's attribute values).
func streamImage(t *testing.T, item map[string]types.AttributeValue) string {
	t.Helper()
	var conv func(v types.AttributeValue) any
	conv = func(v types.AttributeValue) any {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			return map[string]any{"S": v.Value}
		case *types.AttributeValueMemberN:
			return map[string]any{"N": v.Value}
		case *types.AttributeValueMemberBOOL:
			return map[string]any{"BOOL": v.Value}
		case *types.AttributeValueMemberNULL:
			return map[string]any{"NULL": true}
		case *types.AttributeValueMemberM:
			m := map[string]any{}
			for k, e := range v.Value {
				m[k] = conv(e)
			}
			return map[string]any{"M": m}
		case *types.AttributeValueMemberL:
			l := []any{}
			for _, e := range v.Value {
				l = append(l, conv(e))
			}
			return map[string]any{"L": l}
		}
		t.Fatalf("attribute value %T", v)
		return nil
	}
	m := map[string]any{}
	for k, v := range item {
		m[k] = conv(v)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
