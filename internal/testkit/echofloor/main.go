// Command echofloor is the floor of every Go custom runtime: an
// aws-lambda-go function that answers each event with the event itself.
// It does nothing a function could skip, so what it costs per event (the
// Runtime API's long poll, the HTTP client, the runtime loop) and at
// start (the Go runtime, aws-lambda-go's init) is what any Go bootstrap
// pays before doing its own work. lambdainit's BenchmarkBootstrapCost
// runs it beside the wsbind bootstrap, in the same run, as the yardstick
// of its per-message CPU and cold start; nothing ships it.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(_ context.Context, ev json.RawMessage) (json.RawMessage, error) {
		return ev, nil
	})
}
