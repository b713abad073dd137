package fanout

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// Invoker runs the push worker synchronously: the request's JSON in, the
// response's JSON out. An error means the worker may or may not have
// posted; the chunk's pushes are then in doubt.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// LambdaInvoker invokes the push worker function through Lambda's Invoke
// API (RequestResponse).
type LambdaInvoker struct {
	client   *awslambda.Client
	function string
}

// invokeAttempts is how many times an Invoke throttled by Lambda (the
// worker's reserved concurrency in use, TooManyRequestsException) is
// tried. Only throttles are retried: the function did not run. A 5xx or
// network error may come after the worker posted, and a second run would
// post again.
const invokeAttempts = 10

// NewLambdaInvoker returns an Invoker of function (a name or ARN) with
// awsCfg's credentials and region.
func NewLambdaInvoker(awsCfg aws.Config, function string) (*LambdaInvoker, error) {
	if function == "" {
		return nil, errors.New("fanout: no push worker function")
	}
	throttles := retry.IsErrorThrottles(retry.DefaultThrottles)
	client := awslambda.NewFromConfig(awsCfg, func(o *awslambda.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = invokeAttempts
			so.MaxBackoff = 2 * time.Second
			so.RateLimiter = ratelimit.None // throttles wait, they do not spend a quota
			so.Retryables = []retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				var tm *types.TooManyRequestsException
				if errors.As(err, &tm) || throttles.IsErrorThrottle(err).Bool() {
					return aws.TrueTernary
				}
				return aws.FalseTernary
			})}
		})
		o.RetryMaxAttempts = 0
	})
	return &LambdaInvoker{client: client, function: function}, nil
}

// Invoke implements Invoker. A function error (the worker failed or timed
// out) is an error.
func (l *LambdaInvoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	out, err := l.client.Invoke(ctx, &awslambda.InvokeInput{
		FunctionName:   aws.String(l.function),
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        payload,
	})
	if err != nil {
		return nil, err
	}
	if out.FunctionError != nil {
		return nil, fmt.Errorf("fanout: %s: %s: %.300s", l.function, *out.FunctionError, out.Payload)
	}
	return out.Payload, nil
}

// LocalInvoker runs push workers in this process, each instance one
// invocation at a time and at most len(instances) at once, as Lambda does
// with a function's reserved concurrency (where Lambda refuses an Invoke
// over it, LocalInvoker makes it wait). The emulator and the simulator
// use it, with each instance a push worker of its own (its own Poster and
// Limiter), as each Lambda environment would have.
type LocalInvoker struct {
	free    chan lambda.Handler
	timeout time.Duration
}

// NewLocalInvoker returns an Invoker over instances; timeout, when
// positive, is each invocation's deadline, as the function's timeout.
func NewLocalInvoker(timeout time.Duration, instances ...lambda.Handler) *LocalInvoker {
	l := &LocalInvoker{free: make(chan lambda.Handler, len(instances)), timeout: timeout}
	for _, h := range instances {
		l.free <- h
	}
	return l
}

// Invoke implements Invoker.
func (l *LocalInvoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	var h lambda.Handler
	select {
	case h = <-l.free:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { l.free <- h }()
	if l.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}
	return h.Invoke(ctx, payload)
}
