# taawun: `make demo` and `make test` are all a fresh clone needs (each installs into .venv first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LS_VENV := .venv-labelstudio
LS_STAMP := $(LS_VENV)/.installed

.PHONY: help install demo test test-all browser java labelstudio bench report clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-10s %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv and install taawun with its test tools

# torch before taawun: pyproject.toml takes any torch>=2.4 (a CUDA build on a GPU machine), and pip would pick the newest
# one; the CPU build of 2.13.0 lies on disk on the project's machines. Another: make install TORCH='torch==2.6.0'.
TORCH ?= torch==2.13.0

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("taawun needs Python 3.10 or newer" if sys.version_info < (3, 10) else 0)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet '$(TORCH)'
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: install ## Build the sample dataset; train, evaluate and log TF-IDF, the default ensemble and a tiny BERT
	HF_HUB_OFFLINE=1 $(BIN)/taawun data build configs/data/sample.yaml
	HF_HUB_OFFLINE=1 $(BIN)/taawun train configs/experiments/tfidf.yaml
	HF_HUB_OFFLINE=1 $(BIN)/taawun train configs/experiments/default.yaml
	HF_HUB_OFFLINE=1 $(BIN)/taawun train configs/experiments/tiny_bert.yaml
	@echo; echo "Test macro-F1 of the last runs, side by side:"
	@$(BIN)/taawun runs --limit 3
	@echo; echo "Open the MLflow UI: .venv/bin/taawun ui"

# An optional extra of pyproject.toml, installed once into .venv (again when pyproject.toml changes).
$(VENV)/.installed-%: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[$*]'
	touch $@

test: install browser $(VENV)/.installed-export $(VENV)/.installed-labelstudio ## Run the test suite (slow tests excluded)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow"

browser: ## Install Debian's Chromium for the MLflow UI test, when missing (needs root)
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing and not root: the MLflow UI browser test will be skipped"; fi; }

java: ## Install Debian's Java 17 for the Spark test, when missing (needs root)
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	  else echo "java missing and not root: the Spark test will be skipped"; fi; }

labelstudio: $(LS_STAMP) ## Install a Label Studio 1.23 server into .venv-labelstudio (for the live test)

# Its own virtualenv: Label Studio pins Django and many libraries that would fight with MLflow's in .venv.
$(LS_STAMP):
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LS_VENV)/bin/python -m pip install --quiet 'label-studio>=1.23,<1.24'
	touch $@

test-all: install browser java labelstudio $(VENV)/.installed-export $(VENV)/.installed-spark $(VENV)/.installed-labelstudio ## Run every test, the slow ones too
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

bench: install ## Benchmark dataset building on ../shared/data/ant
	HF_HUB_OFFLINE=1 $(BIN)/python bench/data_build.py

report: install ## Regenerate docs/results.md from runs on ../shared/data (about 16 minutes on 2 cores)
	HF_HUB_OFFLINE=1 $(BIN)/python bench/report.py

clean: ## Remove built datasets and caches (keeps .venv)
	rm -rf data/built .pytest_cache .hypothesis
