#!/usr/bin/env bash
# The recipe's environment (Kaldi convention): the repository's venv and package on PATH.
# shellcheck source=recipes/path.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../recipes/path.sh"
