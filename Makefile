# naas_tl developer entry points. Works from a clean clone: `make test` builds the venv first.

PY ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV ?= .venv
PYTEST_ARGS ?=
# Test processes: one per CPU this process may use (nproc follows cpusets, where xdist's
# "auto" counts the host's cores); PYTEST_WORKERS=0 runs the suite in this process.
PYTEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 1)
ARCH ?= nvdla
WORKLOAD ?=
NAS ?=
NAS_SPACE ?=

.DEFAULT_GOAL := test
.PHONY: venv test compare bench search wheel clean

# (Re)install whenever pyproject.toml changes; the stamp lives inside the venv,
# so removing the venv also forces a reinstall.
$(VENV)/.installed: pyproject.toml
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: $(PY) is older than Python 3.11; run 'make PY=/path/to/python3.11'" >&2; exit 1; }
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -e '.[test]'
	touch $@

# The package's bytecode, compiled ahead: where PYTHONDONTWRITEBYTECODE is set (this CI,
# many Docker images) Python would otherwise compile every naas_tl module from source in
# every process, about 0.1 s of each `naas-tl map` and of each test subprocess. compileall
# writes only what is stale.
$(VENV)/.bytecode: $(VENV)/.installed $(shell find naas_tl -name '*.py' 2>/dev/null)
	$(VENV)/bin/python -m compileall -q naas_tl
	touch $@

venv: $(VENV)/.bytecode

# With one test process per core, each process's compiled kernels get one thread (unless
# NUMBA_NUM_THREADS is set): a thread per core in every process oversubscribes the machine
# and spin-waiting OpenMP threads slow the suite (7 min 57 s against 9 min 15 s on 2 cores).
# tests/test_pool_threads.py gives its own workers several threads and checks that the
# thread count changes no number.
TEST_KERNEL_THREADS ?= $(if $(filter-out 0 1,$(PYTEST_WORKERS)),1)

test: $(VENV)/.bytecode
	$(if $(TEST_KERNEL_THREADS),NUMBA_NUM_THREADS=$${NUMBA_NUM_THREADS:-$(TEST_KERNEL_THREADS)}) \
	  $(VENV)/bin/python -m pytest -q -n $(or $(PYTEST_WORKERS),0) tests $(PYTEST_ARGS)

compare: $(VENV)/.bytecode
	$(VENV)/bin/naas-tl compare

bench: $(VENV)/.bytecode
	$(VENV)/bin/python benchmarks/evaluator_throughput.py

# NAAS search: make search ARCH=eyeriss [WORKLOAD=mobilenetv2] [SEARCH_ARGS="--hw-trials 24"]
# Joint network + accelerator search: make search ARCH=eyeriss NAS=1 [NAS_SPACE=nb201]
# NASA chunk accelerator: make search ARCH=nasa [WORKLOAD=...] or ARCH=nasa NAS=1 (docs/nasa.md)
search: $(VENV)/.bytecode
	$(VENV)/bin/naas-tl search --arch $(ARCH) $(if $(WORKLOAD),--workload $(WORKLOAD)) $(if $(filter-out 0,$(NAS)),--nas) $(if $(NAS_SPACE),--nas-space $(NAS_SPACE)) $(SEARCH_ARGS)

# A wheel with the templates, budgets, workloads and data inside (tests/test_wheel.py installs
# one into a fresh venv and runs a search from another folder).
wheel: $(VENV)/.installed
	$(VENV)/bin/python -m pip wheel . --no-deps --no-build-isolation -w dist

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Timeloop/Accelergy image with naas_tl (docker/README.md). No venv needed for these.
.PHONY: docker docker-search
docker:
	docker build -t naas-tl -f docker/Dockerfile .

docker-search:
	docker run --rm -v $(PWD)/runs:/work/runs naas-tl naas-tl search --arch $(ARCH) --verify-with timeloop --out /work/runs/docker-$(ARCH)
