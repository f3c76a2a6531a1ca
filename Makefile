# Training in Imagination: two commands from a fresh clone.
#   make book   set up .venv, execute every chapter and build the HTML book
#   make test   unit tests + every chapter notebook under nbval
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HTML   := _build/html/index.html

.PHONY: help venv book test test-unit test-notebooks test-site benchmark clean

help:
	@echo "make book       set up .venv, execute all chapters, build the HTML book"
	@echo "make test       unit tests and nbval over every chapter notebook"
	@echo "make test-site  checks of the built site (HTML, headless Chromium); run after make book"
	@echo "make benchmark  rollout speed benchmark (JAX vs NumPy vs Python loop vs roofline)"
	@echo "make clean      remove the build, caches and .venv"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[book,test]"
	@touch $(STAMP)

venv: $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --keep-going
	@echo
	@echo "The book is at file://$(CURDIR)/$(HTML)"

test: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env tests book

test-unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env book

test-site: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/site

benchmark: $(STAMP)
	$(BIN)/python benchmarks/rollout_speed.py

clean:
	rm -rf _build $(VENV) .pytest_cache .hypothesis src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
