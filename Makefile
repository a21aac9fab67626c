# Thin aliases for `cargo xtask`: no logic lives here (docs/ci-cd-pipeline.md).
# Variables: ENV=staging|production, VERSION=<a built version>, TAG=<image tag>,
# REASON="why", APPROVER=<name> (deploy-prod approves only with APPROVER set).
.PHONY: ci test tidy demo fmt docker-build docker-push deploy-staging deploy-canary \
        deploy-prod rollback canary-health rehearse-rollback deploy-status deploy-history \
        build eval-gate pipeline release down

ci test:
	cargo xtask ci

tidy:
	cargo xtask tidy

demo:
	cargo run --release -p flightdeck-cli -- demo

fmt:
	cargo fmt --all

docker-build:
	cargo xtask docker-build $(if $(TAG),--tag $(TAG))

docker-push:
	cargo xtask docker-push --tag $(TAG)

build:
	cargo xtask build $(if $(VERSION),--version $(VERSION))

deploy-staging:
	cargo xtask deploy-staging $(if $(VERSION),--version $(VERSION))

eval-gate:
	cargo xtask eval-gate

deploy-canary:
	cargo xtask deploy-canary $(if $(VERSION),--version $(VERSION))

deploy-prod:
	cargo xtask deploy-prod $(if $(APPROVER),--approve --approver $(APPROVER)) $(if $(VERSION),--version $(VERSION))

rollback:
	cargo xtask rollback --env $(or $(ENV),production) $(if $(VERSION),--to $(VERSION)) $(if $(REASON),--reason "$(REASON)")

canary-health:
	cargo xtask canary-health

rehearse-rollback:
	cargo xtask rehearse-rollback $(if $(SCENARIO),--scenario $(SCENARIO),--all)

deploy-status:
	cargo xtask deploy-status $(if $(ENV),--env $(ENV))

deploy-history:
	cargo xtask deploy-history --env $(or $(ENV),production)

pipeline:
	cargo xtask pipeline $(if $(APPROVER),--approve --approver $(APPROVER))

release:
	cargo xtask release $(LEVEL)

down:
	cargo xtask down
