package infra

import (
	_ "embed"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TemplateYAML is infra/template.yaml, built in: the local emulator
// creates its tables from it.
//
//go:embed template.yaml
var TemplateYAML []byte

// Containerfile is infra/Containerfile, built in: wsbind init gives an
// application its build image.
//
//go:embed Containerfile
var Containerfile []byte

// TableInputs returns the template's DynamoDB tables as CreateTable
// requests, in logical id order: keys, attribute definitions, global
// secondary indexes and streams as the template declares them, on-demand.
// names gives each table's name by logical id (the template lets
// CloudFormation or a prefix name them); every table must have one.
func TableInputs(t Template, names map[string]string) ([]*dynamodb.CreateTableInput, error) {
	res := mapOf(t["Resources"])
	var ids []string
	for id, r := range res {
		if strOf(mapOf(r)["Type"]) == "AWS::DynamoDB::Table" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var out []*dynamodb.CreateTableInput
	for _, id := range ids {
		name, ok := names[id]
		if !ok {
			return nil, fmt.Errorf("table %s: no name given", id)
		}
		p := mapOf(mapOf(res[id])["Properties"])
		in := &dynamodb.CreateTableInput{TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest}
		for _, d := range listOf(p["AttributeDefinitions"]) {
			m := mapOf(d)
			in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
				AttributeName: aws.String(strOf(m["AttributeName"])),
				AttributeType: types.ScalarAttributeType(strOf(m["AttributeType"])),
			})
		}
		in.KeySchema = keySchema(p["KeySchema"])
		for _, g := range listOf(p["GlobalSecondaryIndexes"]) {
			m := mapOf(g)
			in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
				IndexName:  aws.String(strOf(m["IndexName"])),
				KeySchema:  keySchema(m["KeySchema"]),
				Projection: &types.Projection{ProjectionType: types.ProjectionType(strOf(mapOf(m["Projection"])["ProjectionType"]))},
			})
		}
		if s := mapOf(p["StreamSpecification"]); s != nil {
			in.StreamSpecification = &types.StreamSpecification{
				StreamEnabled:  aws.Bool(true),
				StreamViewType: types.StreamViewType(strOf(s["StreamViewType"])),
			}
		}
		if len(in.KeySchema) == 0 || len(in.AttributeDefinitions) == 0 {
			return nil, fmt.Errorf("table %s: no key schema or attribute definitions", id)
		}
		out = append(out, in)
	}
	return out, nil
}

func keySchema(v any) []types.KeySchemaElement {
	var out []types.KeySchemaElement
	for _, k := range listOf(v) {
		m := mapOf(k)
		out = append(out, types.KeySchemaElement{
			AttributeName: aws.String(strOf(m["AttributeName"])),
			KeyType:       types.KeyType(strOf(m["KeyType"])),
		})
	}
	return out
}
