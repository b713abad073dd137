package infra

import (
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/wsbind/wsbind/internal/aws/dynamo"
)

// The tables the template deploys are the tables the store is tested
// against (dynamo.CreateTables, the conformance suite) and the emulator
// creates: same keys, attribute definitions, index and stream.
func TestTableInputs_MatchTheStore(t *testing.T) {
	tmpl, err := Parse(TemplateYAML)
	if err != nil {
		t.Fatal(err)
	}
	names := dynamo.Tables{Items: "i", Connections: "c", Subscriptions: "s", Idempotency: "k", History: "h"}
	got, err := TableInputs(tmpl, map[string]string{"ItemsTable": "i", "ConnectionsTable": "c", "SubscriptionsTable": "s", "IdempotencyTable": "k", "HistoryTable": "h"})
	if err != nil {
		t.Fatal(err)
	}
	byName := func(ins []*dynamodb.CreateTableInput) map[string]*dynamodb.CreateTableInput {
		m := map[string]*dynamodb.CreateTableInput{}
		for _, in := range ins {
			m[*in.TableName] = in
		}
		return m
	}
	// JSON shows every exported field, pointers followed, map keys sorted.
	store, _ := json.MarshalIndent(byName(dynamo.TableInputs(names)), "", " ")
	tmplTables, _ := json.MarshalIndent(byName(got), "", " ")
	if string(store) != string(tmplTables) {
		t.Errorf("template tables differ from the store's:\nstore    %s\ntemplate %s", store, tmplTables)
	}

	if _, err := TableInputs(tmpl, map[string]string{"ItemsTable": "i"}); err == nil {
		t.Error("a table without a name: no error")
	}
}
