package dynamodblocal_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/wsbind/wsbind/internal/aws/dynamo"
	"github.com/wsbind/wsbind/internal/emulated/dynamodblocal"
)

// openData starts a server whose items and idempotency tables are kept in
// dir, as a restart of the emulator does: the tables created, then Open.
// The server is closed (without Close: as a killed process leaves it)
// when the test ends, unless the test closes it.
func openData(t *testing.T, dir string) (*dynamodblocal.Server, *dynamodb.Client, dynamodblocal.Restored) {
	t.Helper()
	db := dynamodblocal.New(dynamodblocal.Config{})
	srv := httptest.NewServer(db)
	t.Cleanup(srv.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	c := dynamodb.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDLOCAL", "secret", ""),
		HTTPClient:  &http.Client{Transport: tr},
	}, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := dynamo.CreateTables(ctx, c, tables); err != nil {
		t.Fatal(err)
	}
	r, err := db.Open(dir, tables.Items, tables.Idempotency)
	if err != nil {
		t.Fatal(err)
	}
	return db, c, r
}

func putQ(t *testing.T, c *dynamodb.Client, table, id, text string) {
	t.Helper()
	_, err := c.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		"_binding": &types.AttributeValueMemberS{Value: "questions"}, "id": &types.AttributeValueMemberS{Value: id},
		"_stream": &types.AttributeValueMemberS{Value: "questions"}, "text": &types.AttributeValueMemberS{Value: text},
		"n": &types.AttributeValueMemberN{Value: "1.50"},
	}})
	if err != nil {
		t.Fatal(err)
	}
}

// getQ returns the text of item id, "" when there is none.
func getQ(t *testing.T, c *dynamodb.Client, id string) string {
	t.Helper()
	out, err := c.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(tables.Items), Key: map[string]types.AttributeValue{
		"_stream": &types.AttributeValueMemberS{Value: "questions"}, "id": &types.AttributeValueMemberS{Value: id},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if out.Item == nil {
		return ""
	}
	if n := out.Item["n"].(*types.AttributeValueMemberN).Value; n != "1.50" {
		t.Errorf("item %s: n = %q after the restart, want the exact 1.50 written", id, n)
	}
	return out.Item["text"].(*types.AttributeValueMemberS).Value
}

// TestOpen_RestartKeepsItems: items written, updated and deleted before
// a restart read back after it, from the log (no Close: a killed
// process) and then from the snapshot the restart made, while a table
// not named durable starts empty.
func TestOpen_RestartKeepsItems(t *testing.T) {
	dir := t.TempDir()
	_, c, r := openData(t, dir)
	if r.Items != 0 || r.Frames != 0 {
		t.Fatalf("a new directory restored %+v", r)
	}
	for i := range 30 {
		putQ(t, c, tables.Items, "q"+strconv.Itoa(i), "text "+strconv.Itoa(i))
	}
	putQ(t, c, tables.Items, "q1", "changed")
	if _, err := c.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{TableName: aws.String(tables.Items),
		Key: map[string]types.AttributeValue{
			"_stream": &types.AttributeValueMemberS{Value: "questions"}, "id": &types.AttributeValueMemberS{Value: "q2"},
		},
		UpdateExpression:          aws.String("SET #t = :t"),
		ExpressionAttributeNames:  map[string]string{"#t": "text"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberS{Value: "updated"}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteItem(t.Context(), &dynamodb.DeleteItemInput{TableName: aws.String(tables.Items),
		Key: map[string]types.AttributeValue{
			"_stream": &types.AttributeValueMemberS{Value: "questions"}, "id": &types.AttributeValueMemberS{Value: "q3"},
		}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(tables.Connections), Item: map[string]types.AttributeValue{
		"conn_id": &types.AttributeValueMemberS{Value: "c1"},
	}}); err != nil {
		t.Fatal(err)
	}

	check := func(c *dynamodb.Client) {
		t.Helper()
		for i := range 30 {
			want := "text " + strconv.Itoa(i)
			switch i {
			case 1:
				want = "changed"
			case 2:
				want = "updated"
			case 3:
				want = ""
			}
			if got := getQ(t, c, "q"+strconv.Itoa(i)); got != want {
				t.Errorf("q%d after the restart: %q, want %q", i, got, want)
			}
		}
		out, err := c.Scan(t.Context(), &dynamodb.ScanInput{TableName: aws.String(tables.Connections)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Count != 0 {
			t.Errorf("the connections table kept %d items over the restart, want none (it is not durable)", out.Count)
		}
	}
	_, c2, r := openData(t, dir)
	if r.Items != 29 || r.Frames != 33 || r.Dropped != 0 {
		t.Errorf("restart from the log: restored %+v, want 29 items from 33 frames, nothing dropped", r)
	}
	check(c2)
	// The restart folded the log into the snapshot.
	_, c3, r := openData(t, dir)
	if r.Items != 29 || r.Frames != 0 {
		t.Errorf("restart from the snapshot: restored %+v, want 29 items, no frames", r)
	}
	check(c3)
}

// TestOpen_TornTail: a write cut short by a crash (the log's last frame
// partly written) loses that write only; the restart says what it
// dropped and keeps the log as found.
func TestOpen_TornTail(t *testing.T) {
	for _, damage := range []string{"truncated", "corrupt"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			_, c, _ := openData(t, dir)
			for i := range 5 {
				putQ(t, c, tables.Items, "q"+strconv.Itoa(i), "text "+strconv.Itoa(i))
			}
			logPath := filepath.Join(dir, "dynamodb.log")
			b, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			cut := int64(len(b))
			switch damage {
			case "truncated": // the last frame's last 7 bytes never made it
				b = b[:len(b)-7]
			case "corrupt": // a flipped byte in the last frame's payload
				b[len(b)-3] ^= 0x20
			}
			if err := os.WriteFile(logPath, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, c2, r := openData(t, dir)
			if r.Items != 4 || r.Frames != 4 || r.Dropped == 0 || r.DroppedAt+r.Dropped != int64(len(b)) || r.DroppedAt >= cut {
				t.Errorf("restored %+v, want 4 items from 4 frames and the tail dropped", r)
			}
			for i := range 4 {
				if got := getQ(t, c2, "q"+strconv.Itoa(i)); got != "text "+strconv.Itoa(i) {
					t.Errorf("q%d: %q after the restart", i, got)
				}
			}
			if got := getQ(t, c2, "q4"); got != "" {
				t.Errorf("q4, whose frame was damaged, restored as %q", got)
			}
			kept, err := os.ReadFile(r.KeptAs)
			if err != nil || string(kept) != string(b) {
				t.Errorf("the damaged log is not kept as found at %q: %v", r.KeptAs, err)
			}
			// New writes go on after the restart, and survive the next one.
			putQ(t, c2, tables.Items, "q9", "after")
			_, c3, r := openData(t, dir)
			if r.Dropped != 0 || getQ(t, c3, "q9") != "after" || getQ(t, c3, "q0") != "text 0" {
				t.Errorf("second restart: %+v", r)
			}
		})
	}
}

// TestOpen_Errors: a directory that cannot be made or written, a
// damaged snapshot and a file of another kind are one clear error each,
// not a silent empty start.
func TestOpen_Errors(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(base, "ro")
	if err := os.Mkdir(readOnly, 0o555); err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(base, "damaged")
	os.Mkdir(damaged, 0o755)
	os.WriteFile(filepath.Join(damaged, "dynamodb.snapshot"), []byte("wsbind emulator DynamoDB data, format 1\n\x00\x00\x00\x05zzzz"), 0o644)
	foreign := filepath.Join(base, "foreign")
	os.Mkdir(foreign, 0o755)
	os.WriteFile(filepath.Join(foreign, "dynamodb.log"), []byte("SQLite format 3\x00...................................."), 0o644)

	cases := []struct{ dir, want string }{
		{filepath.Join(file, "sub"), "not a directory"},
		{damaged, "dynamodb.snapshot is damaged"},
		{filepath.Join(foreign), "not an emulator data file"},
	}
	if os.Geteuid() != 0 { // root writes anywhere
		cases = append(cases, struct{ dir, want string }{readOnly, "permission denied"})
	}
	for _, tc := range cases {
		db := dynamodblocal.New(dynamodblocal.Config{})
		_, err := db.Open(tc.dir, tables.Items)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "data directory") {
			t.Errorf("Open(%s): %v, want an error about the data directory saying %q", tc.dir, err, tc.want)
		}
	}
}

// TestOpen_WriteFails: a write the log cannot take (here: the log closed
// under it, as a full disk fails it) fails the request with the reason,
// and is not made.
func TestOpen_WriteFails(t *testing.T) {
	dir := t.TempDir()
	db, c, _ := openData(t, dir)
	putQ(t, c, tables.Items, "q0", "kept")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := c.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(tables.Items), Item: map[string]types.AttributeValue{
		"_binding": &types.AttributeValueMemberS{Value: "questions"}, "id": &types.AttributeValueMemberS{Value: "q1"},
		"_stream": &types.AttributeValueMemberS{Value: "questions"},
	}}, func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	var ae smithy.APIError
	if !errors.As(err, &ae) || !strings.Contains(ae.ErrorMessage(), "data directory") {
		t.Fatalf("a write the log cannot take: %v, want an error about the data directory", err)
	}
	if got := getQ(t, c, "q1"); got != "" {
		t.Errorf("the write that failed was made: %q", got)
	}
	_, c2, _ := openData(t, dir)
	if getQ(t, c2, "q0") != "kept" || getQ(t, c2, "q1") != "" {
		t.Error("after the restart: want q0 only")
	}
}
