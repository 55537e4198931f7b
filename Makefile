# Lambda builds for `sam build` (template.yaml: BuildMethod makefile; samconfig.toml builds in
# source so every function shares the workspace's target dir). Each build-<LogicalId> target
# names the function's binary; scripts/lambda-build.sh builds all functions in one cargo build
# (the first call) and copies the binary to $(ARTIFACTS_DIR)/bootstrap.
# scripts/check-static.py checks every function of template.yaml has its line here.

build-DeployTriggerFunction: BINARY = deploy-trigger
build-PipelineTriggerFunction: BINARY = deploy-trigger
build-HealthCheckTunerFunction: BINARY = health-check-tuner
build-DeploymentWatcherFunction: BINARY = deployment-watcher
build-TrafficValidatorFunction: BINARY = traffic-validator
build-FailureHandlerFunction: BINARY = failure-handler
build-DeploymentGroupResourceFunction: BINARY = deployment-group-resource

build-%:
	@test -n "$(BINARY)" || { echo "Makefile: no BINARY for $@: add a 'build-<LogicalId>: BINARY = <bin>' line"; exit 1; }
	scripts/lambda-build.sh "$(BINARY)" "$(ARTIFACTS_DIR)"
