#!/usr/bin/env bash
# Sourced by every egs/<corpus>/path.sh: puts the repository's venv and package on PATH.
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -x "${_root}/.venv/bin/speechx" ]; then
  export PATH="${_root}/.venv/bin:${PATH}"
fi
export PYTHONPATH="${_root}${PYTHONPATH:+:${PYTHONPATH}}"
export PYTHONUNBUFFERED=1
# Offline by design: nothing is fetched from a model hub at run time.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
unset _root
