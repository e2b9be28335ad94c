# speechx: `make demo` and `make test` work on a fresh machine (Debian, Python >= 3.11, root or sudo).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
TORCH  ?= torch==2.13.0
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages: what the tests need, and what the demo needs on top.
APT_TEST := espeak-ng shellcheck
APT_DEMO := $(APT_TEST) fillets-ng-data fillets-ng-data-nl
# Optional: monolingual text for data_prep.textcorpus (English and German fortunes; Dutch HTML
# manuals: the Debian FAQ, aptitude's and Debian Edu's manuals, LibreOffice's help).
APT_TEXTCORPUS := fortunes fortunes-de debian-faq-nl aptitude-doc-nl debian-edu-doc-nl libreoffice-help-nl

.PHONY: help demo codeswitch textcorpus-deps test test-slow lint format sysdeps-test sysdeps-demo venv dev clean

help:
	@echo "make demo       install everything and run egs/fillets/run.sh with conf/demo.yaml"
	@echo "make codeswitch install the code-switching extra, run egs/codeswitch/run.sh"
	@echo "make textcorpus-deps  install the text sources and pysbd of the optional text corpus"
	@echo "make test       install the test requirements, lint, run the fast tests"
	@echo "make test-slow  run the tests marked slow"
	@echo "make lint       ruff check, ruff format --check, shellcheck"

# apt-get update only when something is missing, so a second run is quick and offline.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
endef

sysdeps-test:
	$(call apt_install,$(APT_TEST))

sysdeps-demo:
	$(call apt_install,$(APT_DEMO))

# torch first (the CPU wheel on local disk), then the package; re-run when pyproject changes.
$(VENV)/.base: pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -e .
	@touch $@

$(VENV)/.dev: $(VENV)/.base
	$(PIP) install -e '.[dev]'
	@touch $@

$(VENV)/.codeswitch: $(VENV)/.base
	$(PIP) install -e '.[codeswitch]'
	@touch $@

$(VENV)/.textcorpus: $(VENV)/.base
	$(PIP) install -e '.[textcorpus]'
	@touch $@

$(VENV)/.ref: $(VENV)/.dev
	$(PIP) install -e '.[dev,ref]'
	@touch $@

venv: $(VENV)/.base
dev: $(VENV)/.dev

demo: sysdeps-demo venv
	cd egs/fillets && ./run.sh --config conf/demo.yaml

codeswitch: sysdeps-demo $(VENV)/.codeswitch
	cd egs/codeswitch && ./run.sh

textcorpus-deps: $(VENV)/.textcorpus
	$(call apt_install,$(APT_TEXTCORPUS))

lint: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	shellcheck -x $$(git ls-files '*.sh' 'egs/*/run.sh' '.ci/run' | sort -u)

format: dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: sysdeps-test dev lint
	$(PY) -m pytest -q

test-slow: sysdeps-demo $(VENV)/.ref
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
