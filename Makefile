# The single list of commands. CI runs `make test` (through .ci/run).
# Settings: defaults in .env.example, overrides in .env or the environment.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# Node: the devDependency `node` (package.json) puts the Node the image runs (24) into
# node_modules/.bin; everything make starts (npm, npx, jest, tsc, the stack's consumers) runs on it.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
STACK := stack/bin/stack
# Runs a command with the stack's settings and local secrets exported (as the services see them).
WITH_ENV = ROOT=$$PWD; set -a; source stack/bin/lib.sh >/dev/null; set +a;
# The benchmark runs from source (ts-node, no type check: `make typecheck` covers bench/).
BENCH = node -r ts-node/register/transpile-only bench/run.ts

.PHONY: help install build up down restart status logs clean connectors connect-api schemas demo test test-unit test-rules test-stack test-faults test-cluster typecheck fetch bench-standin bench-ab k8s test-k8s strimzi-crds k8s-plugins-lock test-containers

# The suites and the bench measure the pipeline, not the mass-email guard: the stack they start
# runs the emailer with the same organizations and no ceilings (config/welcome-orgs.unguarded.json;
# `stack up` restarts a running emailer whose file differs). The guard's own tests set theirs;
# `make up` and `make demo` run config/welcome-orgs.json, as shipped. An explicit
# WELCOME_ORGS_FILE wins.
UNGUARDED_ORGS := $(CURDIR)/config/welcome-orgs.unguarded.json
test-stack test-faults test-cluster bench bench-smoke bench-ab test-containers: export WELCOME_ORGS_FILE ?= $(UNGUARDED_ORGS)

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@# the binary comes from the `node` package's preinstall (allowScripts in package.json): check it came
	@test -x node_modules/.bin/node || { echo "npm ci left no node_modules/.bin/node: its install script did not run (allowScripts in package.json, or --ignore-scripts)"; exit 1; }
	@touch $@

install: node_modules/.package-lock.json ## npm dependencies (frozen lockfile)

build: install ## compile TypeScript into dist/
	npm run --silent build

fetch: ## resolve the stack's Java components from Maven Central
	$(STACK) fetch

up: build ## start the whole local stack (idempotent); `make up SERVICES="kafka registry"` for a part
	$(STACK) up $(SERVICES)

down: ## stop exactly what the stack started (by recorded pid)
	$(STACK) down $(SERVICES)

restart: ## restart SERVICES="..."
	$(STACK) restart $(SERVICES)

connectors: build schemas ## check the database's CDC settings and grants, PUT connect/*.json to Kafka Connect, wait until RUNNING
	@$(WITH_ENV) node dist/tools/db-preflight.js && node dist/tools/connectors.js register

# METHOD and path go to the tool as two words, the path quoted (it may hold ? and &).
connect-api: ## Kafka Connect's REST API as its operator: make connect-api REQ='POST /connectors/NAME/restart?includeTasks=true' [BODY='{json}']
	@test -n "$(REQ)" || { echo "usage: make connect-api REQ='GET /connectors?expand=status' [BODY='{...}']"; exit 2; }
	@$(WITH_ENV) node dist/tools/connect-client.js $(word 1,$(REQ)) '$(word 2,$(REQ))' $(if $(BODY),'$(BODY)')

schemas: build ## check schemas/*.avsc (git history, registry), set subject compatibility levels, register (idempotent)
	@$(WITH_ENV) node dist/tools/schemas.js check && node dist/tools/schemas.js register

replay-dlq: build ## re-drive a stage's dead letters after fixing the cause: make replay-dlq STAGE=emailer
	@test -n "$(STAGE)" || { echo "usage: make replay-dlq STAGE=augmenter|emailer|audit|delivery-status|delivery-audit"; exit 2; }
	@$(WITH_ENV) node dist/tools/dlq.js replay $(STAGE)

# Member guards (docs: operations.md): pre-existing members, held Welcomes, reconciliation.
.PHONY: seed-preexisting release-held reconcile forget
seed-preexisting: build ## record every existing member as pre-existing, never welcomed (idempotent): [UNTIL=ISO-time]
	@$(WITH_ENV) node dist/tools/seed-preexisting.js $(if $(UNTIL),--until=$(UNTIL))

release-held: build ## send the Welcomes the rate breaker held for one organization: make release-held ORG=UA (no ORG: list them)
	@$(WITH_ENV) node dist/tools/held.js $(if $(ORG),release $(ORG),status)

reconcile: build ## members without a Welcome, per organization and cause: [SINCE=ISO-time] [GRACE=minutes] [ARGS=--redrive|--json]
	@$(WITH_ENV) node dist/tools/reconcile.js $(if $(SINCE),--since=$(SINCE)) $(if $(GRACE),--grace-minutes=$(GRACE)) $(ARGS)

forget: build ## an erasure request: record one member as forgotten (keyed hash), delete its rows from our tables: make forget MEMBER=UA/12345678
	@test -n "$(MEMBER)" || { echo "usage: make forget MEMBER=<org>/<member id>"; exit 2; }
	@$(WITH_ENV) node dist/tools/forget.js '$(MEMBER)'

# `up` and `connectors` are idempotent, so on a fresh clone `make demo` is the only command needed.
demo: up connectors ## start what is not running, register schemas and connectors, sign up a few members and show each Welcome
	@$(WITH_ENV) node dist/tools/demo.js

status: ## services, connectors, topics and the pipeline (counts, lag, DLQ, latency) at a glance
	@$(STACK) status
	@echo; echo "CONNECTORS"; $(WITH_ENV) node dist/tools/connectors.js status || true
	@echo; echo "TOPICS (end offsets)"; $(STACK) topics || true
	@echo; echo "DEAD LETTERS"; $(WITH_ENV) node dist/tools/dlq.js status || true
	@echo; echo "HELD BY THE IMPORT GUARD AND THE SEND-RATE BREAKER"; $(WITH_ENV) node dist/tools/held.js status || true
	@echo; $(WITH_ENV) node dist/tools/pipeline-status.js || true
	@echo; $(WITH_ENV) node dist/tools/alerts-status.js || true
	@echo; $(WITH_ENV) node dist/tools/delivery-status.js || true

pipeline: ## the pipeline view of `make status`, refreshed every 5 s (Ctrl-C to leave)
	@$(WITH_ENV) node dist/tools/pipeline-status.js --watch 5

bench: build ## on the running stack: latency at 100/s vs the 20-s poller, throughput ramp, scale-out (bench/results/)
	@$(WITH_ENV) $(BENCH)

bench-smoke: build ## the same bench, seconds long (part of make test)
	@$(WITH_ENV) BENCH_PROFILE=smoke $(BENCH)

bench-standin: ## the SFMC stand-in alone under the bench's send load: its RSS and CPU (no stack needed)
	@node -r ts-node/register/transpile-only bench/standin-load.ts

# A/B of two settings in one run, interleaved (bench/lib/ab.ts): e.g.
#   make bench-ab BENCH_AB_A='emailer:SFMC_CONCURRENT_REQUESTS=1' BENCH_AB_B=''
bench-ab: build ## on the running stack: two settings (BENCH_AB_A, BENCH_AB_B) at 100/s, phases A,B,A,B,… per-hop p50/p99 per arm
	@$(WITH_ENV) node -r ts-node/register/transpile-only bench/lib/ab.ts

logs: ## tail the logs (SERVICE=name for one)
	$(STACK) logs $(SERVICE)

clean: ## stop everything and delete the stack's state (keeps downloaded jars)
	$(STACK) clean

# Lint and format over all the TypeScript. `make lint` only checks (what `make test` runs);
# `make fmt` rewrites: prettier first, then eslint's automatic fixes (e.g. type-only imports).
.PHONY: lint fmt
LINT_DIRS := consumers standins tools bench test
lint: install ## eslint (typed: floating promises, type imports, focused tests) and the prettier check; `make fmt` fixes
	npx eslint --max-warnings 0 $(LINT_DIRS)
	npx prettier --check --log-level warn $(LINT_DIRS)

fmt: install ## reformat with prettier and apply eslint's automatic fixes
	npx prettier --write --log-level warn $(LINT_DIRS)
	npx eslint --fix $(LINT_DIRS)

typecheck: install
	npx tsc -p tsconfig.json --noEmit

test-unit: install ## unit tests: nothing needs to run
	npx jest --selectProjects unit

test-stack: up schemas connectors ## tests against the running local stack, then a seconds-long bench (so it cannot rot)
	$(WITH_ENV) npx jest --selectProjects stack --runInBand
	$(WITH_ENV) BENCH_PROFILE=smoke $(BENCH)

# Kills, restarts and outages while signups flow; every member accounted for afterwards.
# Summary table on stdout and in .state/faults-summary.txt. Nightly: FAULTS_SIGNUPS_PER_SCENARIO=2000.
test-faults: up schemas connectors ## fault injection on the running stack (FAULTS_PROFILE=ci: the CI-sized subset)
	$(WITH_ENV) npx jest --selectProjects faults --runInBand

# The same kinds of fault on a three-node KRaft cluster (issue 15): replication factor 3 and
# min.insync.replicas=2 on every topic, then kill -9 of the member topic's leader, kill -9 of the
# active controller, a rolling restart. The cluster's Kafka data lives apart from the one-node
# stack's ($STATE_DIR/kafka-cluster), so stop a running one-node stack first (make down).
# FAULTS_PROFILE=ci (the smoke `make test` runs): the replication check, members flowing with no
# fault, and the leader kill; the controller kill and the rolling restart in the full profile.
test-cluster: export KAFKA_NODES = 3
test-cluster: up schemas connectors ## broker faults on a three-node Kafka cluster (make down first; FAULTS_PROFILE=ci: the smoke)
	$(WITH_ENV) npx jest --selectProjects cluster --runInBand

# Every fault scenario (issue 21): the whole fault suite in its full profile (test/faults:
# faults, documented answers, guard replicas: Connect kill, SFMC down 10 min, 7 emailers...),
# then the three-node cluster in its full profile (leader kill, controller kill, rolling
# restart). Nightly-sized (not timed yet: every scenario of both); starts and stops the stacks (the
# one-node stack must not be running: it stops it before the cluster, as test-cluster needs).
.PHONY: test-full
test-full: install ## the whole fault suite, then the cluster's (controller kill, rolling restart): every scenario, nightly
	@rc=0; $(MAKE) --no-print-directory test-faults || rc=$$?; $(STACK) down; \
	$(MAKE) --no-print-directory test-cluster || rc=$$?; KAFKA_NODES=3 $(STACK) down; \
	exit $$rc

# Kubernetes (issue 23): manifests rendered from the files the local stack runs on (tools/k8s),
# validated offline against each API's schema; Strimzi's CRDs generated from io.strimzi:api with
# Strimzi's crd-generator (stack/strimzi/pom.xml; its classes need Java 21+: the registry's JDK).
STRIMZI_VERSION = $(shell sed -n 's:.*<strimzi.version>\(.*\)</strimzi.version>.*:\1:p' stack/strimzi/pom.xml)
STRIMZI_CRDS := .state/strimzi/crds-$(STRIMZI_VERSION)
K8S_OUT ?= dist/k8s
$(STRIMZI_CRDS)/kafkaconnect.yaml: stack/strimzi/pom.xml
	@$(STACK) prerequisites
	@$(WITH_ENV) mvn -B -q -f stack/strimzi/pom.xml package -Dstrimzi.java="$$REGISTRY_JAVA_HOME/bin/java" -Dstrimzi.crds.dir="$$PWD/$(STRIMZI_CRDS)" >.state/strimzi-crds.log 2>&1 \
	  || { tail -n 20 .state/strimzi-crds.log; echo "Strimzi CRD generation failed (.state/strimzi-crds.log)"; exit 1; }
	@touch $@

strimzi-crds: $(STRIMZI_CRDS)/kafkaconnect.yaml ## Strimzi's CRDs (STRIMZI_VERSION) generated by its crd-generator into .state/strimzi/

k8s: build ## render the Kubernetes manifests (Strimzi, KEDA, prometheus-operator, core) into dist/k8s/ (K8S_* settings: tools/k8s/settings.ts)
	@node dist/tools/k8s/render.js $(K8S_OUT)

# What `make test` runs: render, validate every object against its schema, promtool on the rendered rule.
test-k8s: k8s strimzi-crds ## validate dist/k8s/ offline (kubernetes-models, KEDA, prometheus-operator, Strimzi CRDs) and run the alert tests on the rendered PrometheusRule
	@node dist/tools/k8s/validate.js $(K8S_OUT) $(STRIMZI_CRDS)
	@cd $(K8S_OUT)/promtool && promtool check rules alerts.rules.yml >/dev/null && promtool test rules alerts.test.yml

k8s-plugins-lock: fetch build ## rewrite deploy/k8s/connect-plugins.lock.json from the jars make fetch resolved (after a version change in stack/pom.xml)
	@node dist/tools/k8s/plugin-lock.js write

# The consumer image built and run here (no Docker engine): buildah/podman/runc, a Debian base
# with the pinned Node made by debootstrap (test/containers/images.sh, cached under .state/containers),
# then the augmenter, emailer and delivery-status from the image in place of their native processes.
test-containers: up schemas connectors ## build the consumer image and run each consumer from it against the stack (~6 min warm; cold adds debootstrap)
	@bash test/containers/images.sh app
	$(WITH_ENV) npx jest --selectProjects containers --runInBand

# `make test` is what CI runs: it starts what it needs and stops it afterwards (only if it
# started it: no `grep -q` there, whose early exit fails the pipeline under pipefail and made
# every run stop a stack it had found running). The CI-sized fault suite (FAULTS_PROFILE=ci:
# every scenario of faults.test.ts, kill -9 of Connect included, and the answers' CI subset)
# runs after the stack tests pass; then the cluster's smoke. `make test-full` runs the rest.
# promtool comes from Debian's prometheus package (`stack prerequisites` installs it).
test-rules: ## promtool: check monitoring/alerts.yml and run its unit tests (monitoring/tests/)
	@$(STACK) prerequisites
	promtool check rules monitoring/alerts.yml
	promtool test rules monitoring/tests/alerts.test.yml

test: install lint typecheck test-unit test-rules test-k8s ## everything, from a fresh machine: install, start the stack, test, stop
	@echo "node $$(node --version) ($$(command -v node))"
	@started_here=0; $(STACK) status | grep ' up ' >/dev/null || started_here=1; \
	rc=0; $(MAKE) --no-print-directory test-stack || rc=$$?; \
	if [ $$rc = 0 ]; then FAULTS_PROFILE=ci $(MAKE) --no-print-directory test-faults || rc=$$?; fi; \
	if [ $$started_here = 1 ]; then $(STACK) down; fi; \
	if [ $$rc = 0 ] && [ $$started_here = 1 ]; then \
	  FAULTS_PROFILE=ci FAULTS_SIGNUPS_PER_SCENARIO=150 $(MAKE) --no-print-directory test-cluster || rc=$$?; KAFKA_NODES=3 $(STACK) down; \
	elif [ $$rc = 0 ]; then echo "make test: the three-node cluster smoke needs the stack down first (it was running): make down && make test-cluster"; fi; \
	exit $$rc
