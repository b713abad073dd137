package emulator

import (
	"testing"
	"time"

	"github.com/wsbind/wsbind/infra"
	"github.com/wsbind/wsbind/internal/emulated/streams"
)

// TestEmulator_MappingConfig: the emulator's stream mapping is configured as the
// template's mapping of the items stream, in either of its forms.
func TestEmulator_MappingConfig(t *testing.T) {
	builtin, err := infra.Parse(infra.TemplateYAML)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mappingConfig(builtin), (streams.Config{BatchSize: 100, MaximumRetryAttempts: 10, BisectBatchOnFunctionError: true}); got.BatchSize != want.BatchSize ||
		got.MaximumRetryAttempts != want.MaximumRetryAttempts || got.BisectBatchOnFunctionError != want.BisectBatchOnFunctionError || got.MaximumBatchingWindow != 0 {
		t.Errorf("infra/template.yaml: got %+v, want %+v", got, want)
	}
	for _, tc := range []struct {
		name, yaml string
		want       streams.Config
	}{
		{"mapping, short GetAtt", `
Resources:
  M:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt ItemsTable.StreamArn
      BatchSize: 7
      MaximumBatchingWindowInSeconds: 2
      MaximumRetryAttempts: -1
      BisectBatchOnFunctionError: "true"
`, streams.Config{BatchSize: 7, MaximumBatchingWindow: 2 * time.Second, MaximumRetryAttempts: -1, BisectBatchOnFunctionError: true}},
		{"SAM event, long GetAtt", `
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Stream:
          Type: DynamoDB
          Properties:
            Stream: {"Fn::GetAtt": "ItemsTable.StreamArn"}
            BatchSize: "3"
            MaximumRetryAttempts: 2
`, streams.Config{BatchSize: 3, MaximumRetryAttempts: 2}},
		{"another table's stream", `
Resources:
  M:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt OtherTable.StreamArn
      BatchSize: 7
`, streams.Config{}},
		{"intrinsics keep the defaults", `
Resources:
  M:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      EventSourceArn: !GetAtt ItemsTable.StreamArn
      BatchSize: !Ref Size
`, streams.Config{}},
	} {
		tmpl, err := infra.Parse([]byte(tc.yaml))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := mappingConfig(tmpl)
		if got.BatchSize != tc.want.BatchSize || got.MaximumBatchingWindow != tc.want.MaximumBatchingWindow ||
			got.MaximumRetryAttempts != tc.want.MaximumRetryAttempts || got.BisectBatchOnFunctionError != tc.want.BisectBatchOnFunctionError {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
