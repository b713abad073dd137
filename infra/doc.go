// Package infra holds wsbind's AWS SAM template (template.yaml), the make
// targets `sam build` runs for it (sam.mk), and an offline check of the
// template: Parse reads it with CloudFormation's short intrinsic tags
// (!Ref, !Sub, ...), and Check reports every way it falls short of what
// the functions need (references, build targets, routes and their
// integrations, invoke permissions, least-privilege IAM, tables, the
// stream's failure handling), and what an operator needs of the stack
// (log groups with retention, stage throttling and access logs, alarms,
// no secret in any environment, deletion policies, tracing).
//
//	t, err := infra.ParseFile("infra/template.yaml")
//	mk, err := infra.ParseSAMMakefile(data)
//	problems := infra.Check(t, infra.Config{...})
package infra
