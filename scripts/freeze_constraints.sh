#!/usr/bin/env bash
# Re-resolve a venv's packages from scratch and write the versions pip chose as a pip constraints file.
#
#   scripts/freeze_constraints.sh PYTHON OUT.txt PIP-INSTALL-ARGS...
#
# Used by `make constraints` (on purpose, never implicitly): a throwaway venv gets `pip install ARGS` with no
# constraints, so OUT.txt holds the newest versions the project's own version ranges allow today. Review the
# diff, run `make test`, commit. The project itself (installed editable) is left out.
set -euo pipefail
python=$1 out=$2
shift 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
version=$("$tmp/venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
{
  echo "# pip constraints: the versions installed when this file was last refreshed (\`make constraints\`)."
  echo "# Resolved with Python $version for: pip install $*"
  "$tmp/venv/bin/python" -m pip freeze --exclude-editable --disable-pip-version-check
} > "$out"
echo "wrote $out ($(grep -vc '^#' "$out") packages, Python $version)"
