# The one entry point: install, run, test, lint.
# `make run` and `make test` work on a fresh machine: they create the virtual environment
# and install what they need first.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium

.PHONY: install assets interop run run-prod bench bench-scale test test-fast lint format browser nginx node clean translations

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,bench]"
	touch $(INSTALLED)

install: $(INSTALLED)

## GOV.UK Frontend for the pages, pinned in frontend/package-lock.json: its JavaScript, images
## and fonts copied from the package, its stylesheets built from its Sass (once with the GOV.UK
## brand, once without: Arial, no crown), and axe-core for the browser tests. The results are
## committed, so `make run` and `make test` need no npm: run this only after changing a pin.
## The sample departments are separate services and never use the IdP's files: they get their
## own copy of the few they serve (not on GOV.UK, so the stylesheet without its brand).
GOVUK_DIST := frontend/node_modules/govuk-frontend/dist/govuk
GOVUK_STATIC := idp/static/govuk
SAMPLES_GOVUK_STATIC := relying_parties/static/govuk
SASS := frontend/node_modules/.bin/sass --no-source-map --style=compressed \
	--load-path=frontend/node_modules --quiet-deps
assets:
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(GOVUK_STATIC) && mkdir -p $(GOVUK_STATIC) tests/e2e/axe
	cp -R $(GOVUK_DIST)/assets $(GOVUK_STATIC)/assets
	cp $(GOVUK_DIST)/govuk-frontend.min.js $(GOVUK_STATIC)/
	$(SASS) frontend/govuk-frontend.scss $(GOVUK_STATIC)/govuk-frontend.min.css
	$(SASS) frontend/govuk-frontend-unbranded.scss $(GOVUK_STATIC)/govuk-frontend-unbranded.min.css
	cp frontend/GOVUK-FRONTEND-LICENCE.txt $(GOVUK_STATIC)/LICENCE.txt
	rm -rf $(SAMPLES_GOVUK_STATIC) && mkdir -p $(SAMPLES_GOVUK_STATIC)
	cp $(GOVUK_STATIC)/govuk-frontend-unbranded.min.css $(GOVUK_STATIC)/govuk-frontend.min.js \
		$(GOVUK_STATIC)/LICENCE.txt $(SAMPLES_GOVUK_STATIC)/
	cp frontend/node_modules/axe-core/axe.min.js frontend/node_modules/axe-core/LICENSE tests/e2e/axe/

## Relying-party libraries whose pins clash with ours get their own virtualenv for
## tests/interop (govuk-onelogin-django pins an older Authlib).
INTEROP_GOVUK := .venv-interop/govuk
$(INTEROP_GOVUK)/.installed: tests/interop/django_app/requirements.txt
	$(PYTHON) -m venv $(INTEROP_GOVUK)
	$(INTEROP_GOVUK)/bin/python -m pip install --quiet --upgrade pip
	$(INTEROP_GOVUK)/bin/python -m pip install --quiet -r tests/interop/django_app/requirements.txt
	touch $@

interop: $(INTEROP_GOVUK)/.installed

## Start the IdP on :8000 and the demo departments on :8001 upward (SQLite in instance/).
run: install
	$(VENV)/bin/idp demo

## The production way on this machine: nginx round-robin over two granian instances, on
## PostgreSQL and Redis (override IDP_DATABASE_URL / IDP_REDIS_URL to use others).
## (Exported to run-prod only, never to the tests; not echoed, as a URL may hold a password.)
run-prod: export IDP_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/idp
run-prod: export IDP_REDIS_URL ?= redis://127.0.0.1:6379/0
run-prod: install nginx
	$(VENV)/bin/idp run-prod

## The benchmark: the IdP the production way against a bare Flask ceiling on the same stack
## and against node-oidc-provider (bench/node); results with the machine's description go to
## bench/results/. bench-scale also seeds 1M citizens and 10M audit entries and measures again
## (takes a while). BENCH_ARGS=--servers compares WSGI servers and worker counts instead.
bench: install nginx node
	$(PY) -m bench.run $(BENCH_ARGS)

bench-scale: install nginx node
	$(PY) -m bench.run --scale $(BENCH_ARGS)

## nginx, the load balancer of run-prod, the production tests and the benchmark (Debian package).
nginx:
	@if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then \
		echo "Installing nginx (Debian package) for the production path..."; \
		SUDO=""; [ "$$(id -u)" = "0" ] || SUDO="sudo"; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nginx >/dev/null; \
		$$SUDO service nginx stop >/dev/null 2>&1 || true; \
	fi

## Node and the benchmark's peer, node-oidc-provider (bench/node, pinned by its package-lock.json):
## Debian's nodejs and npm packages when node is missing, then `npm ci`.
NODE_MODULES := bench/node/node_modules/.package-lock.json
node: $(NODE_MODULES)

$(NODE_MODULES): bench/node/package-lock.json
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
		echo "Installing Node (Debian packages nodejs and npm) for the benchmark's peer..."; \
		SUDO=""; [ "$$(id -u)" = "0" ] || SUDO="sudo"; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; \
	fi
	cd bench/node && npm ci --no-audit --no-fund --loglevel=error

## Headless Chromium for the browser tests, from Debian's packages.
browser:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		echo "Installing Chromium (Debian package) for the browser tests..."; \
		SUDO=""; [ "$$(id -u)" = "0" ] || SUDO="sudo"; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

## Every test, including the browser journeys, the tests that start processes (the `idp`
## program, gunicorn behind nginx, Django) and the PostgreSQL runs of the `both_databases` tests;
## the fuzzers at full strength.
test: install interop browser nginx node
	$(PY) -m pytest -n 2 --dist loadgroup

## The quick tier, for while you work: on SQLite, without the browser and without the tests that
## start processes of their own; the fuzzers send a tenth of their requests. `make test` before a merge.
FAST_FUZZ := IDP_FUZZ_ROUNDS=300 IDP_FUZZ_RAW_ROUNDS=30
test-fast: install
	$(FAST_FUZZ) $(PY) -m pytest -n 2 --dist loadgroup -m "not browser and not processes" -k "not postgresql"

## ruff, then the layers of ARCHITECTURE.md (import-linter contracts in pyproject.toml).
lint: install
	$(VENV)/bin/ruff check idp relying_parties evidence tests bench
	$(VENV)/bin/ruff format --check idp relying_parties evidence tests bench
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format idp relying_parties evidence tests bench
	$(VENV)/bin/ruff check --fix idp relying_parties evidence tests bench

clean:
	rm -rf $(VENV) .venv-interop instance .pytest_cache

## Extract page text and recompile the Welsh catalogue after editing messages.po.
translations: install
	$(VENV)/bin/pybabel extract -F babel.cfg -k _l --no-location --sort-output -o idp/translations/messages.pot .
	$(VENV)/bin/pybabel update -i idp/translations/messages.pot -d idp/translations --no-fuzzy-matching
	$(VENV)/bin/pybabel compile -d idp/translations
