# Training in Imagination: two commands from a fresh clone.
#   make book   set up .venv, execute every chapter and build the HTML book
#   make test   unit tests + every chapter notebook under nbval
PYTHON ?= python3
comma  := ,
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
LOCK   := requirements.lock
# Extras the book's own environment installs (all pinned in $(LOCK)).
EXTRAS := book,test,course
HTML   := _build/html/index.html

.PHONY: help venv lock lint gpu-check book test test-unit test-notebooks test-site benchmark clean \
	assignments book-student test-lowest book-fresh slides

help:
	@echo "make book       set up .venv, execute all chapters, build the HTML book"
	@echo "make book-fresh re-execute every page, then build (after a change in src/imagination)"
	@echo "make test       ruff (format + lint), unit tests and nbval over every chapter notebook"
	@echo "make lint       ruff format --check and ruff check, code and notebooks"
	@echo "make test-site  checks of the built site (HTML, headless Chromium); run after make book"
	@echo "make gpu-check  execute every chapter + the benchmark sweep (on a GPU machine), summary in OUT"
	@echo "make benchmark  rollout speed benchmark (JAX vs NumPy vs Python loop vs roofline)"
	@echo "make assignments   autograded assignments (otter-grader) from the chapters, in _build/assignments"
	@echo "make book-student  the book without exercise solutions, in _build/student/_build/html"
	@echo "make slides     one reveal.js deck per lecture (cells tagged slide), in _build/html/slides; after make book"
	@echo "make lock       refresh requirements.lock from pyproject.toml (uv)"
	@echo "make test-lowest  unit tests and every page with the lowest versions pyproject.toml allows"
	@echo "make clean      remove the build, caches and .venv"

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python >= 3.10 is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $(STAMP)

# Refresh the lock on purpose (exact versions with hashes, every supported Python).
lock: $(STAMP)
	$(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile pyproject.toml $(foreach e,$(subst $(comma), ,$(EXTRAS)),--extra $(e)) \
		--universal --python-version 3.10 --generate-hashes -o $(LOCK)

venv: $(STAMP)

# Pages execute in parallel into the execution cache first (tools/execute.py), then the build
# takes them from there.
book: $(STAMP)
	$(BIN)/python tools/execute.py
	$(BIN)/jupyter-book build . --keep-going
	@echo
	@echo "The book is at file://$(CURDIR)/$(HTML)"

# Re-execute every page (the execution cache keys on a page's code only, so after a change in
# src/imagination the ledger page refuses the old claims until the pages run again).
book-fresh: $(STAMP)
	rm -rf _build/.jupyter_cache _build/claims _build/jupyter_execute
	$(BIN)/python tools/execute.py
	$(BIN)/jupyter-book build . --keep-going
	@echo
	@echo "The book is at file://$(CURDIR)/$(HTML)"

# The formatter and the linter (ruff, configured in pyproject.toml), code and notebooks alike.
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

# Unit tests and every notebook page under nbval, two files at a time (pytest-xdist; a file's
# tests, a notebook's cells, stay on one worker).
test: $(STAMP) lint
	$(BIN)/python -m pytest -p no:cacheprovider -n 2 --dist loadfile --nbval-lax --nbval-current-env tests book

test-unit: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -m "not colab" tests

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -n 2 --dist loadfile --nbval-lax --nbval-current-env book

test-site: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider tests/site

# The lowest versions pyproject.toml allows (uv's lowest-direct resolution: each declared
# dependency at its floor), the package without extras plus what runs tests and pages, in its
# own venv; tools/lowest_versions.py fails if a floor was lifted. Weekly (.github/workflows).
LOWEST := .venv-lowest
# Left out: the tests of the book's tooling (site, Sphinx extension, release, assignments), which
# need the book and test extras rather than the package's floors.
LOWEST_IGNORE := --ignore=tests/site --ignore=tests/test_packaging.py \
	--ignore=tests/test_release.py --ignore=tests/test_assignments.py \
	--ignore=tests/test_ledger_guard.py
test-lowest:
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST)/bin/python -m pip install -q uv
	$(LOWEST)/bin/uv pip install -q --python $(LOWEST)/bin/python --resolution lowest-direct -e .
	$(LOWEST)/bin/uv pip install -q --python $(LOWEST)/bin/python pytest nbval ipykernel hypothesis
	$(LOWEST)/bin/uv pip check --python $(LOWEST)/bin/python
	$(LOWEST)/bin/python tools/lowest_versions.py
	$(LOWEST)/bin/python -m pytest -p no:cacheprovider -m "not colab" $(LOWEST_IGNORE) tests
	$(LOWEST)/bin/python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env book

# Every chapter and the benchmark on an accelerator (or here, at CPU sizes):
# a summary goes to $(OUT). Runs without .venv on a machine that has JAX.
OUT ?= gpu-summary
GPU_CHECK_ARGS ?=
gpu-check:
	$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) benchmarks/gpu_check.py \
		--out $(OUT) $(GPU_CHECK_ARGS)

benchmark: $(STAMP)
	$(BIN)/python benchmarks/rollout_speed.py

# Course material (book/teaching.md): one otter-grader assignment per chapter, generated from the
# chapters' answer/test cells: student notebook, solutions, autograder.zip (tools/assignments.py).
assignments: $(STAMP)
	$(BIN)/python tools/assignments.py build --require-all

# Slides (book/teaching.md): one reveal.js deck per lecture from its cells tagged `slide`, with
# the outputs of the book build (_build/jupyter_execute) where they are current (tools/slides.py).
slides: $(STAMP)
	$(BIN)/python tools/slides.py

# The student edition: solutions removed (_config_student.yml over _config.yml).
book-student: $(STAMP)
	$(BIN)/python tools/assignments.py student-config
	$(BIN)/jupyter-book build . --config _build/student/_config.yml --path-output _build/student --keep-going
	@echo
	@echo "The student edition is at file://$(CURDIR)/_build/student/_build/html/index.html"

clean:
	rm -rf _build $(VENV) $(LOWEST) .pytest_cache .hypothesis src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
