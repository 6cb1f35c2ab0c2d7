# Entry points. `make test` is the one command that installs everything and
# runs the whole test suite; .ci/run calls exactly that.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: test check setup cluster-binaries lab-binaries lab-image cluster-up cluster-down lab-up lab-down lab-status demo lint pytest pytest-lab clean

test: setup cluster-binaries lab-binaries lab-image lint pytest pytest-lab

setup:
	bash scripts/setup.sh

# kube-apiserver & co, etcd, kwok, the KubeRay operator: built from the Go
# module proxy into ~/.cache/chaosray (minutes the first time, seconds after).
cluster-binaries:
	bash scripts/cluster-binaries.sh

# The lab's node components (kubelet, kube-proxy, containerd, CNI plugins,
# CoreDNS, pause) and its images (no registry, no container engine).
lab-binaries:
	bash scripts/cluster-binaries.sh --lab

lab-image: setup lab-binaries
	bash scripts/lab-image.sh

# A test cluster with the reference topology, for humans (KUBECONFIG printed).
cluster-up: setup cluster-binaries
	$(PY) -m tests.rig.kube up

cluster-down:
	$(PY) -m tests.rig.kube down

# The lab (docs/lab.md): real nodes, the reference deployment of deploy/lab/.
lab-up: setup cluster-binaries lab-binaries lab-image
	$(VENV)/bin/chaosray lab up

lab-down:
	$(VENV)/bin/chaosray lab down

# The whole suite on the lab (lab up first if it is not), short timings
# (chaosray/experiments/profiles/short.json); results in ./results/<stamp>/.
demo: setup cluster-binaries lab-binaries lab-image
	$(VENV)/bin/chaosray lab demo

lab-status:
	$(VENV)/bin/chaosray lab status

lint:
	$(VENV)/bin/ruff check chaosray tests benchmarks scripts
	$(VENV)/bin/ruff format --check chaosray tests benchmarks scripts
	$(VENV)/bin/mypy

# Inside a network namespace with loopback only (scripts/contained.sh):
# nothing the tests start can reach beyond this machine.
pytest:
	bash scripts/contained.sh $(PY) -m pytest -ra --ignore=tests/lab $(PYTEST_ARGS)

# The quick loop (after `make setup`): lint, and the tests that need no rig
# component. tests/conftest.py marks each test with the rigs it needs
# (markers in pyproject.toml); tests/test_quick_loop.py checks this list.
PURE_TESTS := not aws and not cluster and not k6 and not lab and not netns and not packaging and not ray and not redis and not server

check: lint
	bash scripts/contained.sh $(PY) -m pytest -q -m "$(PURE_TESTS)" $(PYTEST_ARGS)

# The lab's tests: the lab comes up inside the same kind of namespace (its
# own namespace nested behind a veth) and goes down at the end.
pytest-lab:
	bash scripts/contained.sh $(PY) -m pytest -ra tests/lab $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
