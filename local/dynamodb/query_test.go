package dynamodblocal_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestServer_QueryMatchesMinidyn checks the partition index (query.go)
// against minidyn: random writes (puts, overwrites, deletes, items
// moving between partitions), then every query shape the index answers,
// each asked twice: as is, and with a filter that holds for every item,
// which sends it to minidyn. Pages are followed to the end; the items,
// their order and the counts must agree. Where pages end cannot be
// compared (minidyn counts every item of the table against Limit, so it
// answers without one): the index's pages must be full up to the last,
// which is not empty unless it is the only one.
func TestServer_QueryMatchesMinidyn(t *testing.T) {
	_, c := serveTables(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	topics := []string{"t0", "t1", "t2", "t3:pk", "é", ""}
	for range 400 {
		topic := topics[rng.IntN(len(topics)-1)]
		conn := fmt.Sprintf("c%02d", rng.IntN(40))
		k := map[string]types.AttributeValue{"topic": str(topic), "conn_id": str(conn)}
		if rng.IntN(5) == 0 {
			if _, err := c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(tables.Subscriptions), Key: k}); err != nil {
				t.Fatal(err)
			}
			continue
		}
		k["user"] = str(fmt.Sprint("u", rng.IntN(3)))
		k["n"] = num(fmt.Sprint(rng.IntN(1000)))
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tables.Subscriptions), Item: k}); err != nil {
			t.Fatal(err)
		}
	}

	type shape struct {
		index   bool
		limit   int32
		back    bool
		count   bool
		project bool
	}
	var shapes []shape
	for _, index := range []bool{false, true} {
		for _, limit := range []int32{0, 1, 7, 100} {
			for _, back := range []bool{false, true} {
				for _, count := range []bool{false, true} {
					for _, project := range []bool{false, true} {
						if !(count && project) {
							shapes = append(shapes, shape{index, limit, back, count, project})
						}
					}
				}
			}
		}
	}
	run := func(sh shape, part string, viaMinidyn bool) (pages [][]map[string]types.AttributeValue, counts []int32) {
		hash := "topic"
		if sh.index {
			hash = "conn_id"
		}
		in := &dynamodb.QueryInput{
			TableName:                 aws.String(tables.Subscriptions),
			KeyConditionExpression:    aws.String("#h = :h"),
			ExpressionAttributeNames:  map[string]string{"#h": hash},
			ExpressionAttributeValues: map[string]types.AttributeValue{":h": str(part)},
		}
		if sh.back {
			in.ScanIndexForward = aws.Bool(false)
		}
		if sh.index {
			in.IndexName = aws.String("by_conn")
		}
		if sh.limit > 0 {
			in.Limit = aws.Int32(sh.limit)
		}
		if sh.count {
			in.Select = types.SelectCount
		}
		if sh.project {
			in.ProjectionExpression = aws.String("#h, #u")
			in.ExpressionAttributeNames["#u"] = "conn_id"
			if sh.index {
				in.ExpressionAttributeNames["#u"] = "topic"
			}
		}
		if viaMinidyn {
			in.FilterExpression = aws.String("attribute_exists(#h)")
		}
		for range 1000 {
			out, err := c.Query(ctx, in)
			if err != nil {
				t.Fatalf("%+v via minidyn %v: %v", sh, viaMinidyn, err)
			}
			if !viaMinidyn && out.Count != out.ScannedCount { // minidyn says 0
				t.Fatalf("%+v via minidyn %v: Count %d, ScannedCount %d", sh, viaMinidyn, out.Count, out.ScannedCount)
			}
			counts = append(counts, out.Count)
			pages = append(pages, out.Items)
			if out.LastEvaluatedKey == nil {
				return pages, counts
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
		t.Fatalf("%+v: no end of pages", sh)
		return nil, nil
	}
	parts := append(topics, "c00", "c07", "c39", "nobody")
	checked := 0
	for _, sh := range shapes {
		for _, part := range parts {
			fast, nFast := run(sh, part, false)
			// minidyn counts every item of the table against Limit, so
			// it pages slowly: it answers the query without Limit.
			whole := sh
			whole.limit = 0
			slow, nSlow := run(whole, part, true)
			if sum(nFast) != sum(nSlow) {
				t.Errorf("%+v of %q: count %d, minidyn %d", sh, part, sum(nFast), sum(nSlow))
			}
			if got, want := plain(fast), plain(slow); !reflect.DeepEqual(got, want) {
				t.Errorf("%+v of %q:\n got     %v\n minidyn %v", sh, part, got, want)
			}
			for i, n := range nFast {
				last := i == len(nFast)-1
				if (!last && sh.limit > 0 && n != sh.limit) || (last && n == 0 && i > 0) {
					t.Errorf("%+v of %q: page sizes %v", sh, part, nFast)
					break
				}
			}
			checked += int(sum(nFast))
		}
	}
	if checked == 0 {
		t.Fatal("no query returned anything")
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
