# Autonomics — the one entry point for building, testing and running.

SHELL := /bin/bash
export FIRESTORE_EMULATOR_HOST ?= 127.0.0.1:8780
export PUBSUB_EMULATOR_HOST ?= 127.0.0.1:8781
export AUTONOMICS_PROJECT ?= demo-autonomics
GO ?= go
STATICCHECK_VERSION := v0.8.2
GOVULNCHECK_VERSION := v1.9.0
TEST_FLAGS ?=

.PHONY: screenshots help test tf-check unit lint vuln fmt docs emulators emulators-stop dev demo load cost bench fuzz stage deploy clean
.PHONY: cpu ledger-load

help: ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

test: emulators ## Unit and emulator tests with -race, plus formatting, vet and tf-check.
	@test -z "$$(gofmt -l functions services shared)" || { echo "gofmt needed:"; gofmt -l functions services shared; exit 1; }
	@bash .ci/tf-check.sh
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m $(TEST_FLAGS) ./...

tf-check: ## terraform validate and an offline plan of each environment (skipped without local providers).
	@bash .ci/tf-check.sh $(TF_CHECK_FLAGS)

unit: ## Unit tests only (no emulators; emulator tests skip).
	env -u FIRESTORE_EMULATOR_HOST -u PUBSUB_EMULATOR_HOST $(GO) test -count=1 ./...

lint: ## gofmt, go vet and staticcheck.
	@test -z "$$(gofmt -l functions services shared)" || { gofmt -l functions services shared; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

vuln: ## Known vulnerabilities in the code and its dependencies (needs vuln.go.dev).
	$(GO) run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) ./...

fmt: ## Format the code.
	gofmt -w functions services shared

docs: ## Regenerate the state machine docs from the tables.
	$(GO) test ./shared/machines -run TestGolden -update

emulators: ## Start the Firestore and Pub/Sub emulators unless they already run.
	@bash .ci/emulators.sh start

emulators-stop: ## Stop emulators started by this checkout.
	@bash .ci/emulators.sh stop

dev: emulators ## Run the local stack (functions :8790, query :8791, integrator :8792, monitor :8793, actuator :8794, ingest :8795, receiver :8796, marketplace :8797, sign-up :8798, stand-ins :8799, Prometheus :8800, console :8801) until Ctrl-C.
	$(GO) build -o bin/autonomicsctl ./services/autonomicsctl
	bin/autonomicsctl dev $(DEV_FLAGS)

demo: emulators ## Play the three-tenant scenario through the local stack and verify every chain.
	$(GO) build -o bin/autonomicsctl ./services/autonomicsctl
	bin/autonomicsctl demo $(DEMO_FLAGS)

load: emulators ## Load the local stack (LOAD_FLAGS, e.g. -tenants 10000 -events 10000) against a Firestore baseline.
	$(GO) build -o bin/autonomicsctl ./services/autonomicsctl
	bin/autonomicsctl load $(LOAD_FLAGS)

cpu: emulators ## CPU per decision of the functions host and the other processes over 6,000 direct pushes (CPU_FLAGS, e.g. -events 10000).
	$(GO) build -o bin/autonomicsctl ./services/autonomicsctl
	bin/autonomicsctl load -mode direct -events 6000 -baseline=false $(CPU_FLAGS)

ledger-load: emulators ## The ledger integrator alone under push load: 10,000 receipts at once, 2,000/s and 10,000/s for 5 s (BenchmarkLedgerPushLoad, about 3 minutes; restart the emulators first).
	set -o pipefail; $(GO) test -count=1 -run '^$$' -bench '^BenchmarkLedgerPushLoad$$' -benchtime=1x -timeout 30m ./shared/firestore | grep -E '^Benchmark|^(ok|FAIL)'

cost: emulators ## Reads, writes, RPCs, round trips, publishes and dollars per decision kind on the emulators (COST_FLAGS=-update keeps it in shared/cost/testdata/account.md).
	set -o pipefail; $(GO) test -count=1 -run '^TestCostAccount$$' -v ./shared/cost $(COST_FLAGS) | grep -v -E '^(=== RUN|--- PASS|PASS$$|ok )'

bench: ## Benchmarks of the pure core, the ledger proofs and the alert evaluation.
	$(GO) test -run '^$$' -bench . -benchmem ./shared/governor/... ./shared/receipt/... ./shared/machines/... ./shared/ledger ./shared/alerting

fuzz: ## Fuzz the event decoder for a minute per target.
	$(GO) test ./shared/event -run '^$$' -fuzz FuzzDecodePush -fuzztime 60s
	$(GO) test ./shared/event -run '^$$' -fuzz FuzzDecode -fuzztime 60s

screenshots: ## Regenerate the console's screenshots (shared/console/web/docs) in headless Chromium.
	AUTONOMICS_SCREENSHOTS=1 $(GO) test ./shared/console/web -run TestScreenshots -count=1

stage: ## Build the functions' source archive, dist/source-<sha256>.zip, and print its path.
	$(GO) run ./functions/stage -out dist

deploy: ## Test, build and deploy with Cloud Build (STATE_BUCKET=..., see terraform/README.md).
	@test -n "$(STATE_BUCKET)" || { echo "usage: make deploy STATE_BUCKET=<bucket> [PROJECT=<id>] [DEPLOY_ENV=prod|dev] [NAME_PREFIX=dev-] [REGION=us-central1] [BUILD_SERVICE_ACCOUNT=<email>]"; exit 2; }
	gcloud builds submit --config cloudbuild.yaml $(if $(PROJECT),--project $(PROJECT)) \
	  $(if $(BUILD_SERVICE_ACCOUNT),--service-account projects/$(or $(PROJECT),$$(gcloud config get-value project 2>/dev/null))/serviceAccounts/$(BUILD_SERVICE_ACCOUNT)) \
	  --substitutions "_STATE_BUCKET=$(STATE_BUCKET),_ENV=$(or $(DEPLOY_ENV),prod),_PREFIX=$(NAME_PREFIX),_REGION=$(or $(REGION),us-central1)" .

clean: ## Remove build output and local state.
	rm -rf bin dist .run
