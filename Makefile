# The two commands a newcomer needs:
#   make demo   set up, then run `simulate` on the embedded chaos server
#   make test   set up, then run the whole test suite (what CI runs)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PY      ?= python3
VENV    := .venv
VENV15  := .venv-lk15
UV      := $(VENV)/bin/uv
export PATH := $(CURDIR)/.tools/bin:$(PATH)
export HELM_CACHE_HOME  := $(CURDIR)/.tools/helm/cache
export HELM_CONFIG_HOME := $(CURDIR)/.tools/helm/config
export HELM_DATA_HOME   := $(CURDIR)/.tools/helm/data

.PHONY: setup setup-compat tools demo test lint typecheck pytest pytest-compat lock bench clean

# The two distributions (supervisor/, agent/) installed editable, plus the workspace's dev group.
INSTALL := -e ./supervisor -e ./agent --group dev
PROJECTS := pyproject.toml supervisor/pyproject.toml agent/pyproject.toml

$(VENV)/.installed: $(PROJECTS) constraints/lk18.txt constraints/tools.txt
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --require-hashes -r constraints/tools.txt
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(UV) pip install -q -c constraints/lk18.txt $(INSTALL)
	touch $@

$(VENV15)/.installed: $(PROJECTS) constraints/lk15.txt $(VENV)/.installed
	$(UV) venv -q --allow-existing -p $(VENV)/bin/python $(VENV15)
	VIRTUAL_ENV=$(CURDIR)/$(VENV15) $(UV) pip install -q -c constraints/lk15.txt $(INSTALL)
	touch $@

setup: $(VENV)/.installed
setup-compat: $(VENV15)/.installed
tools:
	bash scripts/install-tools.sh

demo: setup
	$(VENV)/bin/realtime-supervisor simulate --compare --sessions 8 --turns 6 \
		--faults clean,multi_message,stall_mid,drop_mid,no_response,clean --seed 7

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check supervisor agent tests bench

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup tools
	$(VENV)/bin/pytest -q --durations=15

# The oldest supported livekit-agents (1.5.11, the release with the original report's bug).
pytest-compat: setup-compat
	$(VENV15)/bin/pytest -q -m compat --durations=10

# The two suites side by side, each in its own venv: both mostly wait on real sockets and timers,
# so together they take the longer one's time (CI's budget); -O keeps each suite's output whole.
test: lint typecheck
	$(MAKE) --no-print-directory -O -j2 pytest pytest-compat

# Re-resolve the constraints files (run by hand, commit the result).
lock: setup
	$(UV) pip compile -q supervisor/pyproject.toml agent/pyproject.toml --group pyproject.toml:dev \
		--group pyproject.toml:bench -o constraints/lk18.txt \
		--override <(echo 'livekit-agents>=1.8,<1.9'; echo 'livekit-plugins-openai>=1.8,<1.9')
	$(UV) pip compile -q supervisor/pyproject.toml agent/pyproject.toml --group pyproject.toml:dev \
		-o constraints/lk15.txt \
		--override <(echo 'livekit-agents==1.5.11'; echo 'livekit-plugins-openai==1.5.11'; echo 'openai<3')
	# The image's set: lk18's versions without the dev tools, every file's sha256, and the pinned
	# build backend (the Dockerfile installs it with --require-hashes, then builds --no-deps).
	$(UV) pip compile -q supervisor/pyproject.toml agent/pyproject.toml <(echo 'setuptools==80.9.0') \
		-c constraints/lk18.txt --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --no-emit-package realtime-supervisor \
		--custom-compile-command "make lock" -o constraints/image.txt \
		--override <(echo 'livekit-agents>=1.8,<1.9'; echo 'livekit-plugins-openai>=1.8,<1.9')
	# The tools' own pins (uv), with hashes, for `make setup`.
	echo 'uv==0.13.9' | $(UV) pip compile -q - --generate-hashes --python-version 3.11 \
		--custom-compile-command "make lock" -o constraints/tools.txt

# The benchmarks (bench/RESULTS.md says what each measures); about 45 minutes.
bench: setup setup-compat
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(UV) pip install -q -c constraints/lk18.txt $(INSTALL) --group bench
	$(VENV)/bin/python -m bench.effectiveness
	$(VENV)/bin/python -m bench.overhead
	$(VENV)/bin/python -m bench.scrape
	$(VENV)/bin/python -m bench.report

clean:
	rm -rf $(VENV) $(VENV15) .tools .pytest_cache .mypy_cache .ruff_cache
