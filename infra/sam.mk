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
# ahead-of-time code, <name>.cwasm (the authorizer is native: bootstrap
# only). ENGINE=wazero sam build ... makes pure-Go packages.
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

# The makefiles this one was read with: the top-level Makefile (whose
# BUILD, RUN_TARGET and bootstrap rule depend on ARCH when it is read, so
# the package is made by a make run with ARCH set) and this file.
sam_makefiles := $(firstword $(MAKEFILE_LIST)) $(filter-out $(firstword $(MAKEFILE_LIST)),$(lastword $(MAKEFILE_LIST)))
sam_make       = $(MAKE) --no-print-directory $(addprefix -f ,$(sam_makefiles)) ARCH=$(sam_goarch)

.PHONY: build-Connect build-Route build-StreamFanout build-Authorizer sam-bootstrap sam-guest

build-Connect build-Route build-StreamFanout: sam-check-artifacts
	$(sam_make) sam-guest SAM_FUNCTION=$(sam_handler_$(@:build-%=%))

build-Authorizer: sam-check-artifacts
	$(sam_make) sam-bootstrap

.PHONY: sam-check-artifacts
sam-check-artifacts:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: sam build sets it, or pass ARTIFACTS_DIR=DIR"; exit 1; }

# sam-bootstrap: the top-level Makefile's bootstrap for ARCH, copied in.
sam-bootstrap: $(BUILD)/bootstrap
	@mkdir -p $(ARTIFACTS_DIR)
	cp $(BUILD)/bootstrap $(ARTIFACTS_DIR)/bootstrap

# sam-guest: the bootstrap, SAM_FUNCTION's guest, and the guest's compiled
# code, made by running the target's bootstrap as `make build` does.
sam-guest: sam-bootstrap
	@test -n "$(SAM_FUNCTION)" -a -d functions/$(SAM_FUNCTION) || { echo "SAM_FUNCTION=$(SAM_FUNCTION): no guest functions/$(SAM_FUNCTION)"; exit 1; }
	GOOS=wasip1 GOARCH=wasm $(GO) build $(WASMFLAGS) -o $(ARTIFACTS_DIR)/$(SAM_FUNCTION).wasm ./functions/$(SAM_FUNCTION)
	rm -rf $(ARTIFACTS_DIR)/$(SAM_FUNCTION).cache $(ARTIFACTS_DIR)/$(SAM_FUNCTION).cwasm
	$(RUN_TARGET) $(ARTIFACTS_DIR)/bootstrap -compile-cache $(ARTIFACTS_DIR) $(ARTIFACTS_DIR)/$(SAM_FUNCTION).wasm

endif
