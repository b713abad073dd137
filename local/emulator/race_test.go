package emulator_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/coder/websocket"

	"github.com/wsbind/wsbind/local/emulator"
)

// scanTable returns every item of a table, read consistently.
func scanTable(t *testing.T, db *dynamodb.Client, table string) []map[string]types.AttributeValue {
	t.Helper()
	var items []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		items = append(items, page.Items...)
	}
	return items
}

// connIDs returns the conn_id of each item that has one.
func connIDs(items []map[string]types.AttributeValue) []string {
	var ids []string
	for _, m := range items {
		if v, ok := m["conn_id"].(*types.AttributeValueMemberS); ok {
			ids = append(ids, v.Value)
		}
	}
	return ids
}

// TestEmulator_RaceSubscribeClose: a client that subscribes and closes at
// once, without waiting for the reply, leaves no subscription behind. The
// gateway routes the subscribe concurrently with the $disconnect, as API
// Gateway does, so the subscribe's write may land after the disconnect
// looked for the connection's subscriptions; the subscribe must then take
// itself back (RATIONALE: "Why does a subscribe read its connection
// back?").
func TestEmulator_RaceSubscribeClose(t *testing.T) {
	em := start(t, nil)
	// The SDK's own client, its idle connections closed before the
	// emulator's: an unused one keeps the DynamoDB endpoint's Shutdown
	// waiting 5 s.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	cfg := emulator.AWSConfig()
	cfg.HTTPClient = &http.Client{Transport: tr}
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(em.DynamoDBEndpoint()) })
	const n = 20
	subscribes := []string{
		`{"stream":"questions","payload":{"action":"subscribe","data":{"action":"create"},"request_id":"s"}}`,
		`{"stream":"questions","payload":{"action":"subscribe","data":{"action":"update","filter":{"published":true}},"request_id":"s"}}`,
		`{"stream":"questions","payload":{"action":"subscribe","pk":"q1","data":{"action":"delete"},"request_id":"s"}}`,
	}
	var conns []string // the connections' ids, as $connect recorded them
	for i := range n {
		c := mustDial(t, em, "")
		// $connect has recorded the connection before the 101: it is the
		// one id not seen yet.
		var id string
		for _, cid := range connIDs(scanTable(t, db, emulator.Tables.Connections)) {
			if !slices.Contains(conns, cid) {
				if id != "" {
					t.Fatalf("connections %s and %s are both new", id, cid)
				}
				id = cid
			}
		}
		if id == "" {
			t.Fatalf("connection %d is not recorded", i)
		}
		conns = append(conns, id)
		if err := c.c.Write(context.Background(), websocket.MessageText, []byte(subscribes[i%len(subscribes)])); err != nil {
			t.Fatalf("write: %v", err)
		}
		// Close at once: half with the closing handshake, half by
		// dropping the TCP connection.
		if i%2 == 0 {
			go c.c.Close(websocket.StatusNormalClosure, "bye")
		} else {
			c.c.CloseNow()
		}
	}

	// The disconnects are done when no connection is recorded any more;
	// the subscriptions are clean when none of those connections holds
	// one. Both must hold, and keep holding for a while, since a route
	// call may still be finishing.
	const (
		deadline = 5 * time.Second
		quiet    = 500 * time.Millisecond
	)
	var left []string
	var cleanSince time.Time
	for start := time.Now(); ; time.Sleep(25 * time.Millisecond) {
		left = left[:0]
		for _, id := range connIDs(scanTable(t, db, emulator.Tables.Connections)) {
			if slices.Contains(conns, id) {
				left = append(left, "connection "+id)
			}
		}
		for _, m := range scanTable(t, db, emulator.Tables.Subscriptions) {
			id := connIDs([]map[string]types.AttributeValue{m})
			if len(id) == 1 && slices.Contains(conns, id[0]) {
				left = append(left, fmt.Sprintf("subscription %s of %s", m["sub"].(*types.AttributeValueMemberS).Value, m["topic"].(*types.AttributeValueMemberS).Value))
			}
		}
		switch {
		case len(left) > 0:
			cleanSince = time.Time{}
		case cleanSince.IsZero():
			cleanSince = time.Now()
		case time.Since(cleanSince) >= quiet:
			return
		}
		if len(left) > 0 && time.Since(start) > deadline {
			t.Fatalf("%v after the %d connections closed, %d records remain:\n%s", deadline, n, len(left), strings.Join(left, "\n"))
		}
	}
}
