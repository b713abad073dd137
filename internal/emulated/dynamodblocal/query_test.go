package dynamodblocal_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsbind/wsbind/internal/aws/dynamo"
	"github.com/wsbind/wsbind/internal/core/store"
)

// TestServer_QueryMatchesMinidyn checks the partition index (query.go)
// against minidyn: random writes (puts, overwrites, deletes, items
// moving between partitions), then every query shape the index answers,
// each asked twice: as is, and with a filter that holds for every item,
// which sends it to minidyn. Pages are followed to the end; the items,
// their order and the counts must agree. Where pages end cannot be
// compared (minidyn counts every item of the table against Limit, so it
// answers without one): the index's pages must be full up to the last,
// which is not empty unless it is the only one. It runs over both
// tables with an index: subscriptions (by_conn, keys only) and items
// (by_binding, all attributes, sparse: only scoped items have _binding).
func TestServer_QueryMatchesMinidyn(t *testing.T) {
	_, c := serveTables(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))

	// Subscriptions: topic, then sub (conn_id, or conn_id#filter).
	topics := []string{"t0", "t1", "t2", "t3:pk", "é", ""}
	for range 400 {
		topic := topics[rng.IntN(len(topics)-1)]
		conn := fmt.Sprintf("c%02d", rng.IntN(40))
		sub := conn
		if f := rng.IntN(4); f > 0 {
			sub += fmt.Sprintf(`#{"f":%d}`, f)
		}
		k := map[string]types.AttributeValue{"topic": str(topic), "sub": str(sub)}
		if rng.IntN(5) == 0 {
			if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(tables.Subscriptions), Key: k}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		k["conn_id"] = str(conn)
		k["user"] = str(fmt.Sprint("u", rng.IntN(3)))
		k["n"] = num(fmt.Sprint(rng.IntN(1000)))
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tables.Subscriptions), Item: k}); err != nil {
			t.Fatal(err)
		}
	}
	// Items: _stream (a stream, or stream#scope), then id; scoped items
	// carry _binding, the stream.
	streams := []string{"q", "notes", "notes#alice", "notes#bob", "notes#é#x"}
	for range 400 {
		part := streams[rng.IntN(len(streams))]
		k := map[string]types.AttributeValue{"_stream": str(part), "id": str(fmt.Sprintf("i%02d", rng.IntN(40)))}
		if rng.IntN(5) == 0 {
			if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(tables.Items), Key: k}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if stream, _, scoped := strings.Cut(part, "#"); scoped {
			k["_binding"] = str(stream)
		}
		k["n"] = num(fmt.Sprint(rng.IntN(1000)))
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tables.Items), Item: k}); err != nil {
			t.Fatal(err)
		}
	}

	// Each table: its partition and sort key, its index's, an attribute
	// of each beside the partition key to project, the partitions to
	// query and sort keys to ask for.
	type tableSpec struct {
		name, hash, rng, other          string
		index, ixHash, ixRange, ixOther string
		parts, sorts                    []string
	}
	specs := []tableSpec{
		{tables.Subscriptions, "topic", "sub", "sub", "by_conn", "conn_id", "sub", "topic",
			append(topics, "c00", "c07", "c39", "nobody"), []string{"c07", `c07#{"f":1}`, "nobody"}},
		{tables.Items, "_stream", "id", "id", "by_binding", "_binding", "id", "n",
			append(streams, "nobody"), []string{"i05", "i05x", "i39", "none"}}, // i05x: between two ids, as a keyset page's after may be
	}
	type shape struct {
		index   bool
		sortOp  string // a condition on the sort key too: =, >= or >
		limit   int32
		back    bool
		count   bool
		project bool
	}
	var shapes []shape
	for _, index := range []bool{false, true} {
		for _, sortOp := range []string{"", "=", ">=", ">"} {
			for _, limit := range []int32{0, 1, 7, 100} {
				for _, back := range []bool{false, true} {
					for _, count := range []bool{false, true} {
						for _, project := range []bool{false, true} {
							if !(count && project) {
								shapes = append(shapes, shape{index, sortOp, limit, back, count, project})
							}
						}
					}
				}
			}
		}
	}
	run := func(ts tableSpec, sh shape, part, sortKey string, viaMinidyn bool) (pages [][]map[string]types.AttributeValue, counts []int32) {
		hash, rng, other := ts.hash, ts.rng, ts.other
		if sh.index {
			hash, rng, other = ts.ixHash, ts.ixRange, ts.ixOther
		}
		in := &dynamodb.QueryInput{
			TableName:                 aws.String(ts.name),
			KeyConditionExpression:    aws.String("#h = :h"),
			ExpressionAttributeNames:  map[string]string{"#h": hash},
			ExpressionAttributeValues: map[string]types.AttributeValue{":h": str(part)},
		}
		if sh.sortOp != "" {
			in.KeyConditionExpression = aws.String("#h = :h AND #r " + sh.sortOp + " :r")
			in.ExpressionAttributeNames["#r"] = rng
			in.ExpressionAttributeValues[":r"] = str(sortKey)
		}
		if sh.back {
			in.ScanIndexForward = aws.Bool(false)
		}
		if sh.index {
			in.IndexName = aws.String(ts.index)
		}
		if sh.limit > 0 {
			in.Limit = aws.Int32(sh.limit)
		}
		if sh.count {
			in.Select = types.SelectCount
		}
		if sh.project {
			in.ProjectionExpression = aws.String("#h, #u")
			in.ExpressionAttributeNames["#u"] = other
			if other == rng && sh.sortOp != "" { // one name for the attribute
				in.ProjectionExpression = aws.String("#h, #r")
				delete(in.ExpressionAttributeNames, "#u")
			}
		}
		if viaMinidyn {
			in.FilterExpression = aws.String("attribute_exists(#h)")
		}
		for range 1000 {
			out, err := c.Query(ctx, in)
			if err != nil {
				t.Fatalf("%s %+v via minidyn %v: %v", ts.name, sh, viaMinidyn, err)
			}
			if !viaMinidyn && out.Count != out.ScannedCount { // minidyn says 0
				t.Fatalf("%s %+v via minidyn %v: Count %d, ScannedCount %d", ts.name, sh, viaMinidyn, out.Count, out.ScannedCount)
			}
			counts = append(counts, out.Count)
			pages = append(pages, out.Items)
			if out.LastEvaluatedKey == nil {
				return pages, counts
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
		t.Fatalf("%s %+v: no end of pages", ts.name, sh)
		return nil, nil
	}
	for _, ts := range specs {
		checked := 0
		for _, sh := range shapes {
			sorts := []string{""}
			if sh.sortOp != "" {
				sorts = ts.sorts
			}
			for _, part := range ts.parts {
				for _, sortKey := range sorts {
					fast, nFast := run(ts, sh, part, sortKey, false)
					// minidyn counts every item of the table against Limit,
					// so it pages slowly: it answers the query without Limit.
					whole := sh
					whole.limit = 0
					slow, nSlow := run(ts, whole, part, sortKey, true)
					if sum(nFast) != sum(nSlow) {
						t.Errorf("%s %+v of %q %q: count %d, minidyn %d", ts.name, sh, part, sortKey, sum(nFast), sum(nSlow))
					}
					if got, want := plain(fast), plain(slow); !reflect.DeepEqual(got, want) {
						t.Errorf("%s %+v of %q %q:\n got     %v\n minidyn %v", ts.name, sh, part, sortKey, got, want)
					}
					for i, n := range nFast {
						last := i == len(nFast)-1
						if (!last && sh.limit > 0 && n != sh.limit) || (last && n == 0 && i > 0) {
							t.Errorf("%s %+v of %q %q: page sizes %v", ts.name, sh, part, sortKey, nFast)
							break
						}
					}
					checked += int(sum(nFast))
				}
			}
		}
		if checked == 0 {
			t.Fatalf("%s: no query returned anything", ts.name)
		}
	}
}

func sum(ns []int32) (s int32) {
	for _, n := range ns {
		s += n
	}
	return s
}

// plain renders the items of pages comparably, in order.
func plain(pages [][]map[string]types.AttributeValue) []map[string]string {
	items := []map[string]string{}
	for _, p := range pages {
		for _, it := range p {
			m := map[string]string{}
			for k, v := range it {
				switch v := v.(type) {
				case *types.AttributeValueMemberS:
					m[k] = "S:" + v.Value
				case *types.AttributeValueMemberN:
					m[k] = "N:" + v.Value
				default:
					m[k] = fmt.Sprintf("%T", v)
				}
			}
			items = append(items, m)
		}
	}
	return items
}

// indexOnly is the store's client, failing the test on a Query that the
// partition index did not answer (minidyn reports ScannedCount 0).
type indexOnly struct {
	*dynamodb.Client
	t *testing.T
}

func (c indexOnly) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := c.Client.Query(ctx, in, o...)
	if err == nil && out.Count > 0 && out.ScannedCount != out.Count {
		c.t.Errorf("Query %q of %q: Count %d, ScannedCount %d: not answered from the index", aws.ToString(in.KeyConditionExpression), aws.ToString(in.IndexName), out.Count, out.ScannedCount)
	}
	return out, err
}

// TestServer_ListAfterFromIndex: the store's keyset pages (a key
// condition id > after, on a partition of the table or of by_binding)
// are answered from the partition index, not by minidyn's pass over the
// whole table.
func TestServer_ListAfterFromIndex(t *testing.T) {
	_, c := serveTables(t)
	s := dynamo.New(dynamo.Config{Client: indexOnly{c, t}, Tables: tables})
	ctx := t.Context()
	for i := range 30 {
		id := fmt.Sprintf("i%02d", i)
		for _, p := range []store.Part{{Stream: "q"}, {Stream: "notes", Scope: []string{"alice", "bob"}[i%2]}} {
			if err := s.Create(ctx, p, store.Item{ID: id, Data: []byte(`{"id":"` + id + `"}`)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range []store.Part{{Stream: "q"}, {Stream: "notes", Scope: "alice"}, {Stream: "notes", All: true}} {
		var got []string
		for after := ""; ; {
			items, err := s.List(ctx, p, after, 0, 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				got = append(got, it.ID)
			}
			if len(items) < 7 {
				break
			}
			after = items[len(items)-1].ID
		}
		want := 30
		if p.Scope != "" {
			want = 15
		}
		if len(got) != want || !slices.IsSorted(got) {
			t.Errorf("%+v: listed %d ids %v, want %d in order", p, len(got), got, want)
		}
	}
}
