package ssmtest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/wsbind/wsbind/internal/testkit/ssmtest"
)

// TestServer_SpeaksTheSDKsProtocol: the SDK's own SSM client reads
// parameters from the server and understands its errors, so code tested
// against the server is tested against the protocol the service speaks.
func TestServer_SpeaksTheSDKsProtocol(t *testing.T) {
	srv := ssmtest.New(map[string]ssmtest.Param{"/a/secure": {Type: "SecureString", Value: "s3cret"}})
	defer srv.Close()
	srv.Fail("/a/denied", "AccessDeniedException")
	client := ssm.New(ssm.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""), RetryMaxAttempts: 1})
	ctx := context.Background()

	out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/a/secure"), WithDecryption: aws.Bool(true)})
	if err != nil || aws.ToString(out.Parameter.Value) != "s3cret" || out.Parameter.Type != types.ParameterTypeSecureString {
		t.Fatalf("decrypted read: %+v, %v", out, err)
	}
	out, err = client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/a/secure")})
	if err != nil || aws.ToString(out.Parameter.Value) == "s3cret" {
		t.Errorf("read without decryption returned the plain text: %+v, %v", out, err)
	}
	var notFound *types.ParameterNotFound
	if _, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/a/none")}); !errors.As(err, &notFound) {
		t.Errorf("missing parameter: got %v, want ParameterNotFound", err)
	}
	var api smithy.APIError
	if _, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/a/denied")}); !errors.As(err, &api) || api.ErrorCode() != "AccessDeniedException" {
		t.Errorf("denied parameter: got %v, want AccessDeniedException", err)
	}
	if _, err := client.GetParameters(ctx, &ssm.GetParametersInput{Names: []string{"/a/secure"}}); !errors.As(err, &api) || api.ErrorCode() != "UnknownOperationException" {
		t.Errorf("another operation: got %v, want UnknownOperationException", err)
	}
	if n := srv.Calls(); n != 4 {
		t.Errorf("%d GetParameter calls counted, want 4", n)
	}
}
