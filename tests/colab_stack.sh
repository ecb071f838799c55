#!/usr/bin/env bash
# Check that every chapter (book/NN_*.ipynb) runs on Google Colab's preinstalled stack, not only on
# the versions pinned in requirements.txt.
#
# What it does:
#   1. creates a fresh venv in a temp dir (or uses $COLAB_VENV: created there if missing, reused if it
#      exists, to save time) with Python 3.13 like Colab (pyenv's 3.13.0, else python3.13, else python3);
#   2. installs Colab's preinstalled versions (2026): jax/jaxlib 0.7.2, flax 0.11.2, optax 0.2.5,
#      gymnasium 1.3.0, ipywidgets 7.7.1, matplotlib 3.10.0, numpy 2.0.2 (or the nearest release with
#      a wheel for this Python: 2.0.2 has none for 3.13), ipykernel 6.x; no mujoco; plus nbval and pytest;
#   3. simulates each chapter's first cell, `%pip install "mujoco>=3.1,<3.16" "fasttd3 @ git+...github..."`,
#      by installing "mujoco>=3.1,<3.16" and this checkout (its tracked and unignored files, copied to a
#      temp dir so the build writes nothing into the repository) under a constraints file pinning
#      Colab's versions: if the library needed newer ones pip fails instead of upgrading them; the
#      versions are then checked again and the script stops loudly if any differs;
#   4. prints the versions installed, then runs every chapter with nbval in lax mode (outputs are
#      not compared, errors fail) on the CPU, prints a per-chapter summary and the wall times.
#
# Exit status: non-zero if the install fails, a Colab version changed, or any chapter fails.
# Time: about 2-4 min of pip installs on a fresh venv (under 1 min when $COLAB_VENV is reused) plus
# about 2-5 min of notebooks on a 2-core machine; more when the machine is busy.
#
# Usage:  bash tests/colab_stack.sh                      # fresh venv, removed at the end
#         COLAB_VENV=/tmp/colab-venv bash tests/colab_stack.sh   # keep/reuse the venv
#         bash tests/colab_stack.sh book/04_the_update.ipynb     # only some chapters
set -euo pipefail

start_all=$(date +%s)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# Colab's preinstalled versions (overridable from the environment).
JAX_V=${COLAB_JAX:-0.7.2}
FLAX_V=${COLAB_FLAX:-0.11.2}
OPTAX_V=${COLAB_OPTAX:-0.2.5}
GYM_V=${COLAB_GYMNASIUM:-1.3.0}
IPYW_V=${COLAB_IPYWIDGETS:-7.7.1}
MPL_V=${COLAB_MATPLOTLIB:-3.10.0}
NUMPY_V=${COLAB_NUMPY:-2.0.2}
IPYKERNEL_V=${COLAB_IPYKERNEL:-6.29.5}
# numpy releases tried, in order, when Colab's has no wheel for this Python.
NUMPY_FALLBACKS="2.1.0 2.1.3 2.2.6"

say() { printf '\n=== %s\n' "$*"; }
die() { printf '\nCOLAB STACK CHECK FAILED: %s\n' "$*" >&2; exit 1; }

# --- Python -------------------------------------------------------------------------------------
if [ -x /root/.pyenv/versions/3.13.0/bin/python3 ]; then
    PY=/root/.pyenv/versions/3.13.0/bin/python3
elif command -v python3.13 >/dev/null 2>&1; then
    PY=$(command -v python3.13)
else
    PY=$(command -v python3)
    echo "WARNING: no Python 3.13 found; falling back to $PY ($("$PY" --version 2>&1)), not Colab's 3.13"
fi
echo "Python used for the venv: $PY ($("$PY" --version 2>&1))"

# --- venv ---------------------------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/colab-stack.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
if [ -n "${COLAB_VENV:-}" ]; then
    VENV=$COLAB_VENV
else
    VENV=$WORK/venv
fi
if [ -x "$VENV/bin/python" ]; then
    echo "Reusing venv $VENV"
else
    say "Creating venv $VENV"
    "$PY" -m venv "$VENV"
fi
VPY=$VENV/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1
# (drops the noise of a pip config naming local indexes that do not exist on this machine)
pip_() { "$VPY" -m pip "$@" 2> >(grep -v "^WARNING: Location 'file://.*' is ignored: it is neither a file nor a directory" >&2 || true); }

# --- Colab's preinstalled stack -----------------------------------------------------------------
if ! pip_ download -q --only-binary=:all: --no-deps -d "$WORK/probe" "numpy==$NUMPY_V" >/dev/null 2>&1; then
    wanted=$NUMPY_V
    NUMPY_V=
    for v in $NUMPY_FALLBACKS; do
        if pip_ download -q --only-binary=:all: --no-deps -d "$WORK/probe" "numpy==$v" >/dev/null 2>&1; then
            NUMPY_V=$v; break
        fi
    done
    [ -n "$NUMPY_V" ] || die "no numpy wheel among $wanted $NUMPY_FALLBACKS for this Python"
    echo "NOTE: numpy $wanted (Colab's) has no wheel for $("$VPY" --version); using the nearest: numpy $NUMPY_V"
fi

CONSTRAINTS=$WORK/colab-constraints.txt
cat >"$CONSTRAINTS" <<EOF
jax==$JAX_V
jaxlib==$JAX_V
flax==$FLAX_V
optax==$OPTAX_V
gymnasium==$GYM_V
ipywidgets==$IPYW_V
matplotlib==$MPL_V
numpy==$NUMPY_V
ipykernel==$IPYKERNEL_V
EOF

say "Installing Colab's preinstalled stack (no mujoco) + nbval + pytest"
pip_ install -q -c "$CONSTRAINTS" \
    "jax==$JAX_V" "jaxlib==$JAX_V" "flax==$FLAX_V" "optax==$OPTAX_V" "gymnasium==$GYM_V" \
    "ipywidgets==$IPYW_V" "matplotlib==$MPL_V" "numpy==$NUMPY_V" "ipykernel==$IPYKERNEL_V" \
    "nbval==0.11.0" "pytest==9.2.0" pyyaml
# A reused venv may hold mujoco/fasttd3 from an earlier run: start from Colab's state.
pip_ uninstall -q -y fasttd3 mujoco >/dev/null 2>&1 || true

# --- the chapters' first cell, simulated -------------------------------------------------------
# On Colab: %pip install -q "mujoco>=3.1,<3.16" "fasttd3 @ git+https://github.com/fasttd3-book/fasttd3-book"
# Here: the same requirement on mujoco, and this checkout instead of the GitHub URL (no internet but
# PyPI). The copy holds what a commit would: tracked and unignored files needed to build the package.
SRC=$WORK/fasttd3-src
mkdir -p "$SRC"
git ls-files -z -co --exclude-standard -- pyproject.toml README.md LICENSE fasttd3 \
    | tar -C "$ROOT" --null -T - -cf - | tar -C "$SRC" -xf -
say "Simulating the chapters' first cell: pip install \"mujoco>=3.1,<3.16\" <this checkout>"
pip_ install -q -c "$CONSTRAINTS" "mujoco>=3.1,<3.16" "$SRC" \
    || die "installing mujoco + fasttd3 needs versions other than Colab's (pip would upgrade them on Colab)"
# Chapter 10's first cell also installs MJX and Brax (the environments on the device).
say "Simulating chapter 10's first cell: pip install \"mujoco-mjx>=3.1,<3.16\" brax"
pip_ install -q -c "$CONSTRAINTS" "mujoco-mjx>=3.1,<3.16" brax \
    || die "installing mujoco-mjx + brax needs versions other than Colab's (pip would upgrade them on Colab)"

# --- versions -----------------------------------------------------------------------------------
say "Versions installed"
(cd "$WORK" && "$VPY" - "$JAX_V" "$FLAX_V" "$OPTAX_V" "$GYM_V" "$IPYW_V" "$MPL_V" "$NUMPY_V" <<'EOF'
import sys, platform
from importlib.metadata import version, PackageNotFoundError
jax_v, flax_v, optax_v, gym_v, ipyw_v, mpl_v, numpy_v = sys.argv[1:]
expected = {"jax": jax_v, "jaxlib": jax_v, "flax": flax_v, "optax": optax_v, "gymnasium": gym_v,
            "ipywidgets": ipyw_v, "matplotlib": mpl_v, "numpy": numpy_v}
names = list(expected) + ["mujoco", "ipykernel", "jupyter_client", "ipython", "nbval", "pytest", "fasttd3"]
print(f"{'python':16s}{platform.python_version()}")
bad = []
for name in names:
    try:
        v = version(name)
    except PackageNotFoundError:
        v = "MISSING"
    mark = ""
    if name in expected and v != expected[name]:
        mark = f"   <-- expected Colab's {expected[name]}"
        bad.append(name)
    print(f"{name:16s}{v}{mark}")
mj = version("mujoco")
if not (3, 1) <= tuple(int(x) for x in mj.split(".")[:2]) < (4, 0):
    bad.append("mujoco")
import fasttd3
print(f"{'fasttd3 from':16s}{fasttd3.__file__}")
if "site-packages" not in fasttd3.__file__:
    bad.append("fasttd3 (not the installed copy)")
if bad:
    sys.exit(f"versions differ from Colab's: {', '.join(bad)}")
EOF
) || die "the installed versions are not Colab's (see above)"

# --- the chapters -------------------------------------------------------------------------------
if [ "$#" -gt 0 ]; then
    CHAPTERS=("$@")
else
    CHAPTERS=(book/[0-9][0-9]_*.ipynb)
fi
say "Running ${#CHAPTERS[@]} chapter(s) with nbval --nbval-lax on the CPU"
# MuJoCo appends its warnings to MUJOCO_LOG.TXT in the kernel's working directory (book/).
had_log=no; [ -e book/MUJOCO_LOG.TXT ] && had_log=yes
start_tests=$(date +%s)
set +e
# -o addopts="": drop the repo's addopts (its sanitize file and strict comparison); the kernel is
# the venv's python because pytest runs from it (--nbval-current-env).
JAX_PLATFORMS=cpu PYTHONDONTWRITEBYTECODE=1 "$VPY" -m pytest -p no:cacheprovider -o addopts="" \
    --nbval-lax --nbval-current-env --nbval-cell-timeout=600 \
    --junitxml="$WORK/junit.xml" -q -rfE "${CHAPTERS[@]}"
rc=$?
set -e
end=$(date +%s)

say "Per chapter (Colab stack)"
"$VPY" - "$WORK/junit.xml" <<'EOF' || true
import sys, collections
import xml.etree.ElementTree as ET
counts = collections.defaultdict(collections.Counter)
for case in ET.parse(sys.argv[1]).iter("testcase"):
    nb = case.get("classname") or case.get("file") or "?"
    nb = nb.split("::")[0]
    outcome = "passed"
    for child in case:
        if child.tag in ("failure", "error"):
            outcome = "FAILED"
        elif child.tag == "skipped":
            outcome = "skipped"
    counts[nb][outcome] += 1
for nb in sorted(counts):
    c = counts[nb]
    status = "FAIL" if c["FAILED"] else "pass"
    print(f"{status}  {nb}: {c['passed']} cells passed, {c['FAILED']} failed, {c['skipped']} skipped")
EOF

if [ -e book/MUJOCO_LOG.TXT ] && [ "$had_log" = no ]; then
    echo
    echo "NOTE: MuJoCo logged warnings (on Colab they show as stderr in the cells that build these envs):"
    grep -v '^$' book/MUJOCO_LOG.TXT | sed 's/^WARNING [^:]*:[0-9]*:[0-9]* [0-9]*: /  WARNING: /' | sort | uniq -c
    rm -f book/MUJOCO_LOG.TXT
fi

printf '\npytest wall time: %ds; whole script: %ds\n' $((end - start_tests)) $((end - start_all))
if [ "$rc" -ne 0 ]; then
    echo "COLAB STACK CHECK FAILED: a chapter failed on Colab's versions (pytest exit $rc)" >&2
else
    echo "Colab stack check passed."
fi
exit "$rc"
