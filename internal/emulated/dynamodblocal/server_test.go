package dynamodblocal_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/wsbind/wsbind/internal/aws/dynamo"
	"github.com/wsbind/wsbind/internal/core/store"
	"github.com/wsbind/wsbind/internal/emulated/dynamodblocal"
	"github.com/wsbind/wsbind/internal/testkit/storetest"
)

var tables = dynamo.Tables{Items: "items", Connections: "connections", Subscriptions: "subscriptions", Idempotency: "idempotency", History: "history"}

// serve starts the server on 127.0.0.1 and returns a real SDK client of
// it, built from explicit settings only (no shared config, no AWS_*
// variables: this machine sets AWS_CA_BUNDLE).
func serve(t *testing.T) (*dynamodblocal.Server, *dynamodb.Client) {
	t.Helper()
	db := dynamodblocal.New(dynamodblocal.Config{})
	srv := httptest.NewServer(db)
	t.Cleanup(srv.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDLOCAL", "secret", ""),
		HTTPClient:  &http.Client{Transport: tr},
	}
	c := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	return db, c
}

// serveTables also creates the three tables through dynamo.CreateTables,
// which waits for ACTIVE.
func serveTables(t *testing.T) (*dynamodblocal.Server, *dynamodb.Client) {
	t.Helper()
	db, c := serve(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := dynamo.CreateTables(ctx, c, tables); err != nil {
		t.Fatal(err)
	}
	return db, c
}

func TestServer_Conformance(t *testing.T) {
	_, c := serveTables(t)
	s := dynamo.New(dynamo.Config{Client: c, Tables: tables})
	storetest.Run(t, func(*testing.T) storetest.Backend { return s })
}

func TestServer_DescribeTable(t *testing.T) {
	db, c := serveTables(t)
	out, err := c.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(tables.Items)})
	if err != nil {
		t.Fatal(err)
	}
	st, ok := db.Stream(tables.Items)
	if !ok {
		t.Fatal("Stream(items): no stream")
	}
	tb := out.Table
	if tb.TableStatus != types.TableStatusActive || aws.ToString(tb.LatestStreamArn) != st.ARN() ||
		tb.StreamSpecification == nil || tb.StreamSpecification.StreamViewType != types.StreamViewTypeNewAndOldImages {
		t.Errorf("DescribeTable(items): got status %q, stream %q %+v, want ACTIVE, %q NEW_AND_OLD_IMAGES",
			tb.TableStatus, aws.ToString(tb.LatestStreamArn), tb.StreamSpecification, st.ARN())
	}
	if _, ok := db.Stream(tables.Connections); ok {
		t.Error("Stream(connections): got a stream, the table was created without one")
	}
	lt, err := c.ListTables(t.Context(), &dynamodb.ListTablesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{tables.Connections, tables.History, tables.Idempotency, tables.Items, tables.Subscriptions}; !slices.Equal(lt.TableNames, want) {
		t.Errorf("ListTables: got %q, want %q", lt.TableNames, want)
	}
	_, err = c.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String("nope")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("DescribeTable(nope): got %v, want ResourceNotFoundException", err)
	}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func num(s string) types.AttributeValue { return &types.AttributeValueMemberN{Value: s} }

func key(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"_stream": str("s"), "id": str(id)}
}

func TestServer_ExactNumbers(t *testing.T) {
	_, c := serveTables(t)
	ctx := t.Context()
	nums := []string{
		"12345678901234567890123456789012345678",
		"-98765432109876543210987654321098765432",
		"9007199254740993",
		"0.00000000000000000000000000000000000001",
		"3.1415926535897932384626433832795028841",
	}
	it := key("n")
	for i, n := range nums {
		it["n"+strconv.Itoa(i)] = num(n)
	}
	it["l"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{num(nums[0])}}
	it["m"] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"x": num(nums[1]), "y": num("1")}}
	it["empty"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{}}
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &tables.Items, Item: it}); err != nil {
		t.Fatal(err)
	}
	check := func(how string, got map[string]types.AttributeValue, names ...string) {
		t.Helper()
		for _, name := range names {
			if !sameAttr(got[name], it[name]) {
				t.Errorf("%s: %s: got %#v, want %#v", how, name, got[name], it[name])
			}
		}
	}
	all := []string{"n0", "n1", "n2", "n3", "n4", "l", "m", "empty"}
	g, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &tables.Items, Key: key("n")})
	if err != nil {
		t.Fatal(err)
	}
	check("GetItem", g.Item, all...)
	// A projection goes through minidyn's expression interpreter, which
	// computes in float64.
	g, err = c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &tables.Items, Key: key("n"), ProjectionExpression: aws.String("n0, n2, m.x")})
	if err != nil {
		t.Fatal(err)
	}
	check("GetItem n0, n2", g.Item, "n0", "n2")
	if m, ok := g.Item["m"].(*types.AttributeValueMemberM); !ok || len(m.Value) != 1 || !sameAttr(m.Value["x"], num(nums[1])) {
		t.Errorf("GetItem m.x: got %#v, want m with x %s only", g.Item["m"], nums[1])
	}
	q, err := c.Query(ctx, &dynamodb.QueryInput{
		TableName:                 &tables.Items,
		KeyConditionExpression:    aws.String("#s = :s"),
		ExpressionAttributeNames:  map[string]string{"#s": "_stream"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":s": str("s")},
	})
	if err != nil || len(q.Items) != 1 {
		t.Fatalf("Query: got %d items, %v", len(q.Items), err)
	}
	check("Query", q.Items[0], all...)

	// An update computes through float64 too; the values it sets and the
	// attributes it leaves must stay exact, and REMOVE must remove.
	const big = "11111111111111111111111111111111111111"
	_, err = c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &tables.Items,
		Key:                       key("n"),
		UpdateExpression:          aws.String("SET n0 = :b, m.y = :c REMOVE n1"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":b": num(big), ":c": num("22222222222222222222222222222222222222")},
	})
	if err != nil {
		t.Fatal(err)
	}
	g, err = c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &tables.Items, Key: key("n")})
	if err != nil {
		t.Fatal(err)
	}
	it["n0"] = num(big)
	delete(it, "n1")
	it["m"] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"x": num(nums[1]), "y": num("22222222222222222222222222222222222222")}}
	check("GetItem after UpdateItem", g.Item, "n0", "n2", "n3", "n4", "l", "m", "empty")
	if _, ok := g.Item["n1"]; ok {
		t.Errorf("GetItem after REMOVE n1: n1 is still there: %#v", g.Item["n1"])
	}

	// DynamoDB refuses a 39th digit; minidyn alone would take it.
	bad := key("bad")
	bad["n"] = num("123456789012345678901234567890123456789")
	_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &tables.Items, Item: bad})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" {
		t.Errorf("PutItem with 39 digits: got %v, want ValidationException", err)
	}
}

// sameAttr compares attribute values exactly: number text included.
func sameAttr(a, b types.AttributeValue) bool {
	switch a := a.(type) {
	case *types.AttributeValueMemberS:
		b, ok := b.(*types.AttributeValueMemberS)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberN:
		b, ok := b.(*types.AttributeValueMemberN)
		return ok && a.Value == b.Value
	case *types.AttributeValueMemberL:
		b, ok := b.(*types.AttributeValueMemberL)
		return ok && slices.EqualFunc(a.Value, b.Value, sameAttr)
	case *types.AttributeValueMemberM:
		b, ok := b.(*types.AttributeValueMemberM)
		if !ok || len(a.Value) != len(b.Value) {
			return false
		}
		for k, v := range a.Value {
			if !sameAttr(v, b.Value[k]) {
				return false
			}
		}
		return true
	}
	return false
}

// read returns the next n records of the stream after position after.
func read(t *testing.T, st *dynamodblocal.Stream, after uint64, n int) []dynamodblocal.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	var out []dynamodblocal.Record
	for len(out) < n {
		recs, err := st.Read(ctx, after, n-len(out))
		if err != nil {
			t.Fatalf("Read after %d records: %v", len(out), err)
		}
		out = append(out, recs...)
		after = recs[len(recs)-1].Seq
	}
	return out
}

func TestServer_Stream(t *testing.T) {
	db, c := serveTables(t)
	ctx := t.Context()
	st, ok := db.Stream(tables.Items)
	if !ok {
		t.Fatal("no stream")
	}
	s := dynamo.New(dynamo.Config{Client: c, Tables: tables})
	q := store.Part{Stream: "q"}
	const exact = "12345678901234567890123456789012345678"
	if err := s.Create(ctx, q, store.Item{ID: "a", Data: []byte(`{"id":"a","n":` + exact + `}`)}); err != nil {
		t.Fatal(err)
	}
	// A failed condition writes nothing, and makes no record.
	if err := s.Create(ctx, q, store.Item{ID: "a", Data: []byte(`{"id":"a","n":2}`)}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second Create: got %v, want ErrExists", err)
	}
	if _, err := s.Replace(ctx, q, store.Item{ID: "a", Version: 5, Data: []byte(`{"id":"a"}`)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale Replace: got %v, want ErrConflict", err)
	}
	if _, err := s.Replace(ctx, q, store.Item{ID: "a", Version: 1, Data: []byte(`{"id":"a","n":3}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, q, store.Item{ID: "b", Data: []byte(`{"id":"b"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, q, "a", store.AnyVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, q, "a", store.AnyVersion); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Delete: got %v, want ErrNotFound", err)
	}
	// A delete of nothing without a condition succeeds, and changes nothing.
	if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &tables.Items, Key: map[string]types.AttributeValue{"_stream": str("q"), "id": str("none")}}); err != nil {
		t.Fatal(err)
	}
	// Writes to a table without a stream make no records.
	if err := s.Subscribe(ctx, store.Subscription{Topic: "q#create", ConnID: "c1"}); err != nil {
		t.Fatal(err)
	}
	recs := read(t, st, 0, 4)
	want := []struct {
		event, id  string
		old, new   string // the n attribute's text, "" for no image, "-" for an image without n
		oldV, newV string
	}{
		{"INSERT", "a", "", exact, "", "1"},
		{"MODIFY", "a", exact, "3", "1", "2"},
		{"INSERT", "b", "", "-", "", "1"},
		{"REMOVE", "a", "3", "", "2", ""},
	}
	nAttr := func(img map[string]events.DynamoDBAttributeValue, name string) string {
		if img == nil {
			return ""
		}
		v, ok := img[name]
		if !ok {
			return "-"
		}
		return v.Number()
	}
	var last uint64
	for i, w := range want {
		r := recs[i]
		ev := r.Event
		id := ev.Change.Keys["id"].String()
		got := []string{ev.EventName, id, nAttr(ev.Change.OldImage, "n"), nAttr(ev.Change.NewImage, "n"),
			nAttr(ev.Change.OldImage, "_version"), nAttr(ev.Change.NewImage, "_version")}
		wantS := []string{w.event, w.id, w.old, w.new, w.oldV, w.newV}
		if w.oldV == "" {
			wantS[4] = ""
		}
		if w.newV == "" {
			wantS[5] = ""
		}
		if !slices.Equal(got, wantS) {
			t.Errorf("record %d: got %q, want %q", i, got, wantS)
		}
		if r.Seq <= last || ev.Change.SequenceNumber != strconv.FormatUint(r.Seq, 10) && ev.Change.SequenceNumber != padded(r.Seq) {
			t.Errorf("record %d: seq %d (%s) after %d", i, r.Seq, ev.Change.SequenceNumber, last)
		}
		last = r.Seq
		if ev.EventSource != "aws:dynamodb" || ev.EventSourceArn != st.ARN() || ev.Change.StreamViewType != "NEW_AND_OLD_IMAGES" {
			t.Errorf("record %d: source %q %q view %q", i, ev.EventSource, ev.EventSourceArn, ev.Change.StreamViewType)
		}
		if d := time.Since(ev.Change.ApproximateCreationDateTime.Time); d < 0 || d > time.Minute {
			t.Errorf("record %d: created %v ago", i, d)
		}
	}
	// Nothing more: the failed writes and the no-op delete made none.
	ctx2, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if more, err := st.Read(ctx2, last, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Read past the last write: got %d records, %v, want to wait", len(more), err)
	}
}

func padded(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for len(s) < 21 {
		s = "0" + s
	}
	return s
}

// A developer's own script writes with the plain SDK: its writes are
// changes like any other.
func TestServer_StreamPlainSDK(t *testing.T) {
	db, c := serveTables(t)
	ctx := t.Context()
	st, _ := db.Stream(tables.Items)
	it := key("x")
	it["n"] = num("1.50")
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &tables.Items, Item: it}); err != nil {
		t.Fatal(err)
	}
	// PutItem answers ALL_OLD, which minidyn ignores.
	it2 := key("x")
	it2["n"] = num("2")
	out, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &tables.Items, Item: it2, ReturnValues: types.ReturnValueAllOld})
	if err != nil {
		t.Fatal(err)
	}
	if !sameAttr(out.Attributes["n"], num("1.50")) {
		t.Errorf("PutItem ALL_OLD: got %#v, want n 1.50", out.Attributes)
	}
	// A failed condition answers the stored item when asked, in the
	// error the SDK parses.
	_, err = c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &tables.Items, Item: it, ConditionExpression: aws.String("attribute_not_exists(id)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) || !sameAttr(ccf.Item["n"], num("2")) {
		t.Errorf("PutItem on a failed condition: got %v (item %#v), want ConditionalCheckFailedException with n 2", err, ccf)
	}
	if _, err := c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &tables.Items, Key: key("x"), UpdateExpression: aws.String("SET extra = :e"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":e": str("yes")},
	}); err != nil {
		t.Fatal(err)
	}
	recs := read(t, st, 0, 3)
	got := []string{}
	for _, r := range recs {
		c := r.Event.Change
		got = append(got, r.Event.EventName+" "+nText(c.OldImage)+" "+nText(c.NewImage))
	}
	want := []string{"INSERT - 1.50", "MODIFY 1.50 2", "MODIFY 2 2+extra"}
	if !slices.Equal(got, want) {
		t.Errorf("records: got %q, want %q", got, want)
	}
}

func nText(img map[string]events.DynamoDBAttributeValue) string {
	if img == nil {
		return "-"
	}
	s := img["n"].Number()
	if _, ok := img["extra"]; ok {
		s += "+extra"
	}
	return s
}

func TestServer_Errors(t *testing.T) {
	_, c := serveTables(t)
	ctx := t.Context()
	_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("nope"), Item: key("a")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("PutItem to a missing table: got %v, want ResourceNotFoundException", err)
	}
	_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &tables.Items, Item: map[string]types.AttributeValue{"id": str("a")}})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ValidationException" {
		t.Errorf("PutItem without the partition key: got %v, want ValidationException", err)
	}
	_, err = c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            &tables.Items,
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("k"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("k"), KeyType: types.KeyTypeHash}},
	})
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Errorf("CreateTable of an existing table: got %v, want ResourceInUseException", err)
	}
}

// BatchWriteItem and TransactWriteItems make one record per item
// changed, in request order.
func TestServer_StreamBatchAndTransaction(t *testing.T) {
	db, c := serveTables(t)
	ctx := t.Context()
	st, _ := db.Stream(tables.Items)
	withN := func(id, n string) map[string]types.AttributeValue {
		it := key(id)
		it["n"] = num(n)
		return it
	}
	_, err := c.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
		tables.Items: {
			{PutRequest: &types.PutRequest{Item: withN("a", "1")}},
			{PutRequest: &types.PutRequest{Item: withN("b", "2")}},
			{DeleteRequest: &types.DeleteRequest{Key: key("none")}},
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: &tables.Items, Key: key("a")}},
		{Update: &types.Update{TableName: &tables.Items, Key: key("b"), UpdateExpression: aws.String("SET n = :n"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":n": num("98765432109876543210987654321098765432")}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// A transaction whose condition fails changes nothing.
	_, err = c.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &tables.Items, Item: withN("c", "3")}},
		{Put: &types.Put{TableName: &tables.Items, Item: withN("b", "4"), ConditionExpression: aws.String("attribute_not_exists(id)")}},
	}})
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		t.Fatalf("transaction with a failed condition: got %v, want TransactionCanceledException", err)
	}
	if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &tables.Items, Item: withN("d", "5")}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range read(t, st, 0, 5) {
		ch := r.Event.Change
		got = append(got, r.Event.EventName+" "+ch.Keys["id"].String()+" "+nText(ch.OldImage)+" "+nText(ch.NewImage))
	}
	want := []string{"INSERT a - 1", "INSERT b - 2", "REMOVE a 1 -", "MODIFY b 2 98765432109876543210987654321098765432", "INSERT d - 5"}
	if !slices.Equal(got, want) {
		t.Errorf("records: got %q, want %q", got, want)
	}
}
