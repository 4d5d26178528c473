# The two commands of the quick start: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run demo console test test-fast test-shifted system-deps lint typecheck format install bench-provision bench-catalog bench-gateway bench-propagation bench-plugins bench-metering bench-fleet bench-tenants bench-tools clean images image-deps test-images

$(STAMP): pyproject.toml gateway_agent/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ./gateway_agent -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the whole control plane (embedded PostgreSQL and Redis unless DATABASE_URL/REDIS_URL).
run: $(STAMP) console
	$(PY) -m saas.launcher run

## The control plane with a demo organization, a local gateway and traffic through it.
demo: $(STAMP) system-deps console
	$(PY) -m saas.launcher run --demo

## The web console: API types from the OpenAPI schema, then the build Django serves at /console/.
console: $(STAMP)
	$(PY) manage.py spectacular --file frontend/openapi.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build

## HAProxy (gateway tests), shellcheck (install.sh), Chromium (console tests, driven by
## Playwright), from the distribution when missing.
system-deps:
	@command -v haproxy >/dev/null 2>&1 && command -v shellcheck >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing HAProxy, shellcheck and Chromium (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy shellcheck chromium >/dev/null; }

## mmdebstrap, buildah and podman (make images), from the distribution when missing: no Docker
## engine is needed.
image-deps:
	@command -v mmdebstrap >/dev/null 2>&1 && command -v buildah >/dev/null 2>&1 && command -v podman >/dev/null 2>&1 || { \
	  echo "Installing mmdebstrap, buildah and podman (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap buildah podman >/dev/null; }

## The gateway and control-plane images (images/): a Debian base by mmdebstrap, then buildah, with
## the names and tags of images/versions.env; SBOMs, archives and report.json in .run/images.
## REFRESH_BASE=1 makes the Debian base again.
images: $(STAMP) image-deps console
	$(PY) images/build.py

## Builds the images, then runs them (tests/images, marked `images`): the gateway image against a
## live control plane, the control plane's image against the test PostgreSQL and Redis.
test-images: images
	$(PY) -m saas.launcher exec -- $(PY) -m pytest -m images tests/images $(PYTEST_ARGS)

## The real OpenID provider the single sign-on tests start (oidc-provider, tests/oidc_provider).
OIDC_PROVIDER := tests/oidc_provider/node_modules/.package-lock.json
$(OIDC_PROVIDER): tests/oidc_provider/package-lock.json
	cd tests/oidc_provider && npm ci --no-audit --no-fund --loglevel=error

## Lint, type-check, the console's unit tests (Vitest), then every test against real PostgreSQL,
## Redis, HAProxy and Chromium. The tests marked `long` (minutes of waiting for slow calls) run
## beside the others, on their own database, and their output follows at the end; pytest's
## "no tests collected" (5) counts as passed for them, for a PYTEST_ARGS that selects none.
LONG_LOG := .run/test-long.log
test: $(STAMP) system-deps lint console $(OIDC_PROVIDER)
	cd frontend && npm test
	@mkdir -p .run; rm -rf .run/test-long; \
	SAAS_TEST_DATA_DIR=$(CURDIR)/.run/test-long $(PY) -m saas.launcher exec -- \
	  $(PY) -m pytest -m "long and not images" $(PYTEST_ARGS) > $(LONG_LOG) 2>&1 & long=$$!; \
	$(PY) -m saas.launcher exec -- $(PY) -m pytest -m "not long and not images" $(PYTEST_ARGS) \
	  && $(MAKE) --no-print-directory test-shifted; status=$$?; \
	echo "--- the long tests (pytest -m long), run beside the others: $(LONG_LOG) ---"; \
	wait $$long; long_status=$$?; cat $(LONG_LOG); \
	[ $$status -eq 0 ] && { [ $$long_status -eq 0 ] || [ $$long_status -eq 5 ]; }

## The fast lane: unit and integration tests, without browsers, gateways or whole processes
## (those are marked slow), and without the lint and the console's build. (tests/images: make
## test-images.)
test-fast: $(STAMP) $(OIDC_PROVIDER)
	$(PY) -m saas.launcher exec -- $(PY) -m pytest tests/unit tests/integration -m "not slow" $(PYTEST_ARGS)

## The suites that read the clock for dates (billing periods, invoices, quotas, token and
## invitation expiry, the audit log, metering, the agent's spool ages) again, the whole session
## CLOCK_SHIFT_DAYS ahead of today (tests/conftest.py): nothing may assume the current month or
## year. Not the e2e suites: their agents and HAProxy run in subprocesses on the real clock.
CLOCK_SHIFT_DAYS ?= 548
SHIFTED_SUITES := tests/unit/test_usage_spool.py tests/unit/test_pricing.py tests/integration/billing \
	tests/integration/tenants/test_tokens.py tests/integration/tenants/test_members.py \
	tests/integration/tenants/test_audit_log.py tests/integration/tenants/test_accounts.py \
	tests/integration/tenants/test_signup.py \
	tests/integration/test_isolation.py \
	tests/integration/metering tests/integration/gateways/test_agent_api.py \
	tests/integration/gateways/test_clusters.py
test-shifted: $(STAMP)
	SAAS_TEST_CLOCK_SHIFT_DAYS=$(CLOCK_SHIFT_DAYS) $(PY) -m saas.launcher exec -- $(PY) -m pytest $(SHIFTED_SUITES)

lint: $(STAMP) system-deps
	shellcheck infra/selfhost/install.sh images/control-plane/entrypoint.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench-provision: $(STAMP)
	$(PY) -m saas.launcher exec -- $(PY) tests/perf/bench_provision.py

clean:
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache

# wrk drives the load; nginx is the upstream and the reverse proxy compared against; valgrind
# counts HAProxy's instructions per request, a figure the machine's load does not move.
bench-tools:
	@command -v wrk >/dev/null 2>&1 && command -v nginx >/dev/null 2>&1 && command -v valgrind >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light valgrind >/dev/null; }

bench-plugins: $(STAMP) system-deps bench-tools
	$(PY) tests/perf/bench_plugins.py

bench-metering: $(STAMP) bench-tools
	$(PY) -m saas.launcher exec -- $(PY) tests/perf/bench_metering.py

bench-catalog: $(STAMP) system-deps
	$(PY) -m saas.launcher exec -- $(PY) tests/perf/bench_catalog.py

bench-gateway: $(STAMP) system-deps bench-tools
	$(PY) -m saas.launcher exec -- $(PY) tests/perf/bench_gateway.py

bench-propagation: $(STAMP) system-deps bench-tools
	$(PY) -m saas.launcher exec -- $(PY) tests/perf/bench_propagation.py

bench-fleet: $(STAMP)
	$(PY) -m saas.launcher exec -- $(PY) tests/perf/bench_fleet.py

bench-tenants: $(STAMP)
	$(PY) -m saas.launcher exec -- $(PY) tests/perf/bench_tenants.py
