package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableClient is the part of *dynamodb.Client that creates and deletes
// tables.
type TableClient interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	DeleteTable(ctx context.Context, in *dynamodb.DeleteTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteTableOutput, error)
}

var _ TableClient = (*dynamodb.Client)(nil)

// pollEvery is how often CreateTables asks whether the tables are ready.
const pollEvery = 50 * time.Millisecond

// CreateTables creates the five tables, on demand, and waits until they
// and their indexes are ACTIVE: the items table with its stream of new
// and old images and its by_binding index, the subscriptions table with
// its by_conn index, the idempotency table. Time to live (attribute "ttl" of connections, subscriptions and idempotency keys)
// is left to the deployment's template: emulators lack the call, and the
// store ignores expired records whether or not DynamoDB deletes them.
func CreateTables(ctx context.Context, c TableClient, t Tables) error {
	return CreateTablesFrom(ctx, c, TableInputs(t))
}

// TableInputs are the definitions of the five tables, named t: what
// infra/template.yaml declares (infra's tests check the two agree).
func TableInputs(t Tables) []*dynamodb.CreateTableInput {
	s := types.ScalarAttributeTypeS
	key := func(name string, kt types.KeyType) types.KeySchemaElement {
		return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: kt}
	}
	def := func(name string) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: s}
	}
	return []*dynamodb.CreateTableInput{{
		TableName:            aws.String(t.Items),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{def(attrStream), def(attrID), def(attrBinding)},
		KeySchema:            []types.KeySchemaElement{key(attrStream, types.KeyTypeHash), key(attrID, types.KeyTypeRange)},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName:  aws.String(IndexByBinding),
			KeySchema:  []types.KeySchemaElement{key(attrBinding, types.KeyTypeHash), key(attrID, types.KeyTypeRange)},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
		StreamSpecification: &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewTypeNewAndOldImages,
		},
	}, {
		TableName:            aws.String(t.Connections),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{def(attrConnID)},
		KeySchema:            []types.KeySchemaElement{key(attrConnID, types.KeyTypeHash)},
	}, {
		TableName:            aws.String(t.Subscriptions),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{def(attrTopic), def(attrSub), def(attrConnID)},
		KeySchema:            []types.KeySchemaElement{key(attrTopic, types.KeyTypeHash), key(attrSub, types.KeyTypeRange)},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName:  aws.String(IndexByConn),
			KeySchema:  []types.KeySchemaElement{key(attrConnID, types.KeyTypeHash), key(attrSub, types.KeyTypeRange)},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}},
	}, {
		TableName:            aws.String(t.Idempotency),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{def(attrKey)},
		KeySchema:            []types.KeySchemaElement{key(attrKey, types.KeyTypeHash)},
	}, {
		TableName:            aws.String(t.History),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{def(attrPart), def(attrPos), def(attrHStream)},
		KeySchema:            []types.KeySchemaElement{key(attrPart, types.KeyTypeHash), key(attrPos, types.KeyTypeRange)},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName:  aws.String(IndexByStream),
			KeySchema:  []types.KeySchemaElement{key(attrHStream, types.KeyTypeHash), key(attrPos, types.KeyTypeRange)},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	}}
}

// CreateTablesFrom creates tables and waits until they and their indexes
// are ACTIVE.
func CreateTablesFrom(ctx context.Context, c TableClient, ins []*dynamodb.CreateTableInput) error {
	for _, in := range ins {
		if _, err := c.CreateTable(ctx, in); err != nil {
			return fmt.Errorf("dynamo: create table %s: %w", *in.TableName, err)
		}
	}
	for _, in := range ins {
		if err := waitActive(ctx, c, *in.TableName); err != nil {
			return err
		}
	}
	return nil
}

// waitActive polls until the table and its indexes are ACTIVE. The SDK's
// waiter starts at 20 s between polls; emulators are ready in well under
// a second.
func waitActive(ctx context.Context, c TableClient, name string) error {
	for {
		out, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &name})
		if err != nil {
			return fmt.Errorf("dynamo: describe table %s: %w", name, err)
		}
		ready := out.Table.TableStatus == types.TableStatusActive
		for _, ix := range out.Table.GlobalSecondaryIndexes {
			ready = ready && ix.IndexStatus == types.IndexStatusActive
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dynamo: table %s not active: %w", name, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

// DeleteTables deletes the four tables, those that exist.
func DeleteTables(ctx context.Context, c TableClient, t Tables) error {
	var errs []error
	for _, name := range []string{t.Items, t.Connections, t.Subscriptions, t.Idempotency} {
		_, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		var nf *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			errs = append(errs, fmt.Errorf("dynamo: delete table %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
