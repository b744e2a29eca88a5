# One venv, one install; every target installs what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test test-unit test-integration test-e2e screenshots lint fmt schemas settings-doc bench bench-accounts bench-api bench-handlers bench-broker clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the whole stack locally (broker, PostgreSQL, both services); Ctrl-C stops it.
run: $(STAMP)
	$(BIN)/msp-import-dev up

## All test tiers: unit, integration (real PostgreSQL + broker), e2e.
test: $(STAMP)
	bash scripts/install-browser.sh
	$(BIN)/pytest

test-unit: $(STAMP)
	$(BIN)/pytest -m unit

test-integration: $(STAMP)
	$(BIN)/pytest -m integration

test-e2e: $(STAMP)
	bash scripts/install-browser.sh
	$(BIN)/pytest -m e2e

## Refresh the README's screenshots (docs/screenshots/*.png) from the browser tests;
## other test runs write them to artifacts/screenshots/ (git-ignored).
screenshots: $(STAMP)
	bash scripts/install-browser.sh
	UPDATE_SCREENSHOTS=1 $(BIN)/pytest tests/e2e/ui

lint: $(STAMP)
	$(BIN)/ruff check services schemas tests bench chaos
	$(BIN)/ruff format --check services schemas tests bench chaos
	$(BIN)/mypy
	$(BIN)/python -m schemas.generate --check
	$(BIN)/python -m services.infra.settings_doc --check README.md

fmt: $(STAMP)
	$(BIN)/ruff format services schemas tests
	$(BIN)/ruff check --fix services schemas tests

## Regenerate schemas/json/*.json and schemas/asyncapi.yaml from the models.
schemas: $(STAMP)
	$(BIN)/python -m schemas.generate

## Regenerate the README's configuration table from the pydantic-settings classes.
settings-doc: $(STAMP)
	$(BIN)/python -m services.infra.settings_doc --write README.md

## Throughput and latency of the import worker and the accounts read model, the
## accounts pages at 1,000,000 accounts, the API against its bare ceiling
## (see docs/performance.md).
bench: $(STAMP)
	bash scripts/install-wrk.sh
	$(BIN)/python bench/worker_bench.py
	$(BIN)/python bench/accounts_page_bench.py
	$(BIN)/python bench/api_bench.py

## The policy service's API against a bare aiohttp + asyncpg ceiling, loaded by wrk.
bench-api: $(STAMP)
	bash scripts/install-wrk.sh
	$(BIN)/python bench/api_bench.py

## GET /v1/accounts with 1,000,000 accounts of one partner.
bench-accounts: $(STAMP)
	$(BIN)/python bench/accounts_page_bench.py

## The handlers against the vendor simulators (docs/performance.md).
bench-handlers: $(STAMP)
	$(BIN)/python bench/handlers_bench.py

## The development broker alone: its trip latency as a topic fills with small batches.
bench-broker: $(STAMP)
	$(BIN)/python bench/broker_probe.py

clean:
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache

## Validate Dockerfile, docker-compose.yml and deploy/ offline (docs/deploy.md):
## kustomize renders, strict schema validation (Kubernetes, KEDA/Strimzi CRDs,
## compose-spec), topics and settings checked against the code.
.PHONY: validate-deploy compose-up compose-down
validate-deploy: $(STAMP)
	VENV_BIN=$(BIN) scripts/install-deploy-tools.sh
	$(BIN)/pytest -m deploy tests/deploy

## The whole stack on Docker (needs a Docker engine with Compose v2): builds the
## image, writes .env with fresh secrets if there is none, waits until healthy.
COMPOSE ?= docker compose
compose-up:
	@test -f .env || { \
		$(PYTHON) -c 'import base64, re, secrets; t = open(".env.example").read(); t = re.sub(r"(?m)^AUTH_JWT_SECRET=$$", "AUTH_JWT_SECRET=" + secrets.token_urlsafe(48), t); t = re.sub(r"(?m)^POSTGRES_PASSWORD=$$", "POSTGRES_PASSWORD=" + secrets.token_hex(24), t); t = re.sub(r"(?m)^SECRETS_KEY=$$", "SECRETS_KEY=" + base64.b64encode(secrets.token_bytes(32)).decode(), t); open(".env", "w").write(t)' \
		&& chmod 600 .env \
		&& echo "compose-up: wrote .env with a fresh AUTH_JWT_SECRET, POSTGRES_PASSWORD and SECRETS_KEY"; }
	$(COMPOSE) up --detach --build --wait --wait-timeout 300
	$(COMPOSE) ps

## Stop the Docker stack; data stays in its volumes (`docker compose down -v` drops it).
compose-down:
	$(COMPOSE) down --remove-orphans

## Fault and abuse suite (docs/reliability.md): kills, rebalances, PostgreSQL and broker
## outages, poison input, API abuse; prints a table of figures, exits 1 on any FAIL.
## `chaos` runs the full sizes (about 15 minutes on 2 cores), `chaos-ci` the CI sizes.
.PHONY: chaos chaos-ci
chaos: $(STAMP)
	$(BIN)/python -m chaos.run --size full

chaos-ci: $(STAMP)
	$(BIN)/python -m chaos.run --size ci
