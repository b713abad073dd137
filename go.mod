module github.com/wsbind/wsbind

go 1.26

require (
	github.com/aws/aws-lambda-go v1.55.1
	github.com/tetratelabs/wazero v1.12.0
)

require golang.org/x/sys v0.44.0 // indirect
