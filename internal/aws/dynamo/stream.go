package dynamo

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/wsbind/wsbind/internal/core/store"
)

// ErrExpired is ChangeOf's error for the removal of an item whose time
// to live ran out: DynamoDB deleted it, nobody did, so it makes no push.
var ErrExpired = errors.New("dynamo: item expired (removed by TTL)")

// ChangeOf reads a stream record of the items table, as Lambda delivers
// it, as the store.Change fan-out takes: Stream is the binding's stream
// (a scoped item's scope cut off), the images are rendered as the store
// reads items (appendObject: one member per attribute not starting with
// "_", "id" first), so a push and a retrieve of one item are the same
// bytes. It returns ErrExpired for an item DynamoDB's TTL removed, and an
// error, for the log, for a record that is not an object of ours (another
// application's item, whose keys are not _stream and id) or an image it
// cannot read.
func ChangeOf(rec *events.DynamoDBEventRecord) (store.Change, error) {
	var ch store.Change
	keys := rec.Change.Keys
	stream, ok1 := stringAttr(keys, attrStream)
	id, ok2 := stringAttr(keys, attrID)
	if !ok1 || !ok2 || len(keys) != 2 {
		return ch, fmt.Errorf("keys %v are not %s and %s strings: not an item of wsbind's", sortedKeys(keys), attrStream, attrID)
	}
	ch.Stream, ch.Scope, _ = strings.Cut(stream, scopeSep)
	ch.PK = id
	switch events.DynamoDBOperationType(rec.EventName) {
	case events.DynamoDBOperationTypeInsert:
		ch.Kind = store.KindCreate
	case events.DynamoDBOperationTypeModify:
		ch.Kind = store.KindUpdate
	case events.DynamoDBOperationTypeRemove:
		if ui := rec.UserIdentity; ui != nil && ui.Type == "Service" && ui.PrincipalID == "dynamodb.amazonaws.com" {
			return ch, ErrExpired
		}
		ch.Kind = store.KindDelete
	default:
		return ch, fmt.Errorf("unknown event name %q", rec.EventName)
	}
	var old, new map[string]types.AttributeValue
	var err error
	if rec.Change.OldImage != nil {
		if old, err = imageAttrs(rec.Change.OldImage); err == nil {
			ch.Old, err = appendObject(nil, old)
		}
		if err != nil {
			return ch, fmt.Errorf("%s/%s: old image: %w", stream, id, err)
		}
	}
	if rec.Change.NewImage != nil {
		if new, err = imageAttrs(rec.Change.NewImage); err == nil {
			ch.New, err = appendObject(nil, new)
		}
		if err != nil {
			return ch, fmt.Errorf("%s/%s: new image: %w", stream, id, err)
		}
	}
	if (ch.Kind == store.KindDelete && ch.Old == nil) || (ch.Kind != store.KindDelete && ch.New == nil) {
		// Retrying cannot bring the image back.
		return ch, fmt.Errorf("%s/%s: %s record without the image a push needs (stream view type %q, want NEW_AND_OLD_IMAGES)",
			stream, id, rec.EventName, rec.Change.StreamViewType)
	}
	// The version after the change: the new image's, or for a delete the
	// one after the old image's. An item another tool wrote has none (0).
	if ch.Kind == store.KindDelete {
		if v := versionOf(old); v > 0 {
			ch.Version = v + 1
		}
	} else {
		ch.Version = versionOf(new)
	}
	return ch, nil
}

// versionOf reads an image's _version; 0 when it has none that reads as
// a positive integer.
func versionOf(img map[string]types.AttributeValue) int64 {
	v, ok := img[attrVersion].(*types.AttributeValueMemberN)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// stringAttr returns attribute k of m if it is a string.
func stringAttr(m map[string]events.DynamoDBAttributeValue, k string) (string, bool) {
	v, ok := m[k]
	if !ok || v.DataType() != events.DataTypeString {
		return "", false
	}
	return v.String(), true
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// imageAttrs converts a stream image, as Lambda's event carries it, to
// the SDK's attribute values, which appendObject renders. A number whose
// text is not exactly a JSON number is an error, not a guess.
func imageAttrs(img map[string]events.DynamoDBAttributeValue) (map[string]types.AttributeValue, error) {
	out := make(map[string]types.AttributeValue, len(img))
	for k, v := range img {
		a, err := attrOf(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		out[k] = a
	}
	return out, nil
}

func attrOf(v events.DynamoDBAttributeValue) (types.AttributeValue, error) {
	switch v.DataType() {
	case events.DataTypeString:
		return &types.AttributeValueMemberS{Value: v.String()}, nil
	case events.DataTypeNumber:
		if !isJSONNumber(v.Number()) {
			return nil, fmt.Errorf("number %q is not a JSON number", v.Number())
		}
		return &types.AttributeValueMemberN{Value: v.Number()}, nil
	case events.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: v.Boolean()}, nil
	case events.DataTypeNull:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case events.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: v.Binary()}, nil
	case events.DataTypeMap:
		m, err := imageAttrs(v.Map())
		if err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberM{Value: m}, nil
	case events.DataTypeList:
		l := make([]types.AttributeValue, len(v.List()))
		for i, e := range v.List() {
			a, err := attrOf(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			l[i] = a
		}
		return &types.AttributeValueMemberL{Value: l}, nil
	case events.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: v.StringSet()}, nil
	case events.DataTypeNumberSet:
		for i, n := range v.NumberSet() {
			if !isJSONNumber(n) {
				return nil, fmt.Errorf("[%d]: number %q is not a JSON number", i, n)
			}
		}
		return &types.AttributeValueMemberNS{Value: v.NumberSet()}, nil
	case events.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: v.BinarySet()}, nil
	}
	return nil, fmt.Errorf("unknown attribute type %d", v.DataType())
}

// isJSONNumber reports whether s is exactly a JSON number:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s string) bool {
	i := 0
	digits := func() bool {
		start := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	return i == len(s)
}
