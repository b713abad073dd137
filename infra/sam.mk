# The targets `sam build` runs for infra/template.yaml (BuildMethod:
# makefile). The top-level Makefile includes this file.
#
# SAM's contract: it copies the function's CodeUri (the repository root)
# to a scratch directory and there runs
#     make --makefile <copy>/Makefile build-<LogicalId>
# with ARTIFACTS_DIR in the environment; whatever the target leaves in
# ARTIFACTS_DIR is the function's package. Here that is the bootstrap for
# the Lambda architecture, and for a guest function <name>.wasm, its
# compiled code, <name>.cache/, and with ENGINE=wasmtime (the default) its
# ahead-of-time code, <name>.cwasm (the authorizer and the push worker
# are native: bootstrap only). ENGINE=wazero sam build ... makes pure-Go packages. The wsbind
# command makes them (wsbind build), as it does an application's.
#
# SAM does not tell make the function's architecture. SAM_ARCH does, in
# Lambda's names, and defaults to the template's Architecture default:
#     sam build -t infra/template.yaml                  # arm64 (qemu-aarch64-static on x86)
#     SAM_ARCH=x86_64 sam build -t infra/template.yaml --parameter-overrides Architecture=x86_64

ifndef wsbind_sam_mk
wsbind_sam_mk := 1

SAM_ARCH ?= arm64
sam_goarch_arm64  := arm64
sam_goarch_x86_64 := amd64
sam_goarch         = $(or $(sam_goarch_$(SAM_ARCH)),$(error SAM_ARCH=$(SAM_ARCH): want arm64 or x86_64))

# Each function's Handler in the template, which is also its guest's name
# under functions/ (infra's test checks the two agree).
sam_handler_Connect      := connect
sam_handler_Route        := route
sam_handler_StreamFanout := streamfanout
sam_handler_Authorizer   := authorizer
sam_handler_Push         := push

.PHONY: build-Connect build-Route build-StreamFanout build-Authorizer build-Push sam-check-artifacts

# Each target makes one function's package with the wsbind command: the
# bootstrap for SAM_ARCH and the function's own guest with its compiled
# code (the authorizer and the push worker: the bootstrap alone).
sam_functions_authorizer := none
sam_functions_push       := none
build-Connect build-Route build-StreamFanout build-Authorizer build-Push: sam-check-artifacts
	$(WSBIND) build -v -arch $(sam_goarch) -engine $(ENGINE) -o $(ARTIFACTS_DIR) \
		$(if $(CROSS_CC),-cc $(CROSS_CC)) $(if $(QEMU),-qemu $(QEMU)) \
		-functions $(or $(sam_functions_$(sam_handler_$(@:build-%=%))),$(sam_handler_$(@:build-%=%)))

sam-check-artifacts:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: sam build sets it, or pass ARTIFACTS_DIR=DIR"; exit 1; }

endif
