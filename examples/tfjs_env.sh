#!/usr/bin/env bash
# Builds the separate TF.js conversion environment used by `usmr convert --to tfjs`:
#   .venv-tfjs/   python venv: tensorflowjs 4.22 installed --no-deps (its pinned dependency
#                 tensorflow-decision-forests wants TF 2.19), sharing TF 2.21 etc. with .venv
#                 through a .pth file, plus the small pure-Python packages it imports;
#   .venv-tfjs/node/node_modules/@tensorflow/tfjs   pure-JS TF.js for the Node.js check.
# Called by `make tfjs-env`. Needs .venv (make venv), python3 -m venv, npm.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TFJS_VENV=${TFJS_VENV:-.venv-tfjs}
test -x "$VENV/bin/python" || { echo "run 'make venv' first" >&2; exit 1; }
test -x "$TFJS_VENV/bin/python" || "$VENV/bin/python" -m venv --without-pip "$TFJS_VENV"
SITE=$("$TFJS_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
BASE_SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$(cd "$BASE_SITE" && pwd)" > "$SITE/usmr_base_venv.pth"
"$VENV/bin/pip" install -q --no-deps --upgrade --target "$SITE" \
    tensorflowjs==4.22.0 tensorflow-hub==0.16.1 tf-keras==2.21.0
# tensorflowjs imports tensorflow_decision_forests and jax.experimental.jax2tf at module
# level, only to convert TF-DF and JAX models. In this environment only: a stub package for
# the first (the real one pins TF 2.19) and a lazy jax import (keras probes jax if present).
mkdir -p "$SITE/tensorflow_decision_forests"
echo '"""Stub: TF-DF models are not converted here (examples/tfjs_env.sh)."""' \
    > "$SITE/tensorflow_decision_forests/__init__.py"
sed -i 's/^from jax.experimental import jax2tf$/try:\n  from jax.experimental import jax2tf\nexcept ImportError:  # usmr: JAX models are not converted\n  jax2tf = None/' \
    "$SITE/tensorflowjs/converters/jax_conversion.py"
TF_CPP_MIN_LOG_LEVEL=2 "$TFJS_VENV/bin/python" -c "import tensorflowjs.converters.tf_saved_model_conversion_v2"
npm install --silent --no-save --no-audit --no-fund --prefix "$TFJS_VENV/node" @tensorflow/tfjs@4.22.0
echo "TF.js environment ready: $TFJS_VENV"
