# Sourced by setup.sh, test.sh and demo.sh: the interpreter the project installs into and runs with.
#   MANET_PYTHON, when set, names it.
#   Else the python3 on PATH when it already runs in a virtual or conda environment (used as it is).
#   Else the project's own virtual environment .venv (`manet_python --create` makes it), so a distribution's
#   externally managed Python (PEP 668: Debian, Ubuntu, Fedora) is never installed into.

MANET_MIN_PYTHON="3.10"

# Print the interpreter's path; with --create, make .venv when it is the one and is missing or broken.
manet_python() {
  if [ -n "${MANET_PYTHON:-}" ]; then
    echo "$MANET_PYTHON"
    return
  fi
  local base
  base=$(command -v python3 || true)
  if [ -z "$base" ]; then
    echo "python3 (${MANET_MIN_PYTHON} or newer) is required: install it from your distribution or python.org" >&2
    return 1
  fi
  if ! "$base" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "$base is Python $("$base" -c 'import platform; print(platform.python_version())'): this project" \
         "needs ${MANET_MIN_PYTHON} or newer (put a newer python3 first on PATH, or set MANET_PYTHON)" >&2
    return 1
  fi
  # A venv has sys.prefix != sys.base_prefix; a conda environment has conda-meta/ in its prefix.
  if "$base" -c 'import os, sys
sys.exit(0 if sys.prefix != sys.base_prefix or os.path.isdir(os.path.join(sys.prefix, "conda-meta")) else 1)'; then
    echo "$base"
    return
  fi
  if [ "${1:-}" = "--create" ] && ! .venv/bin/python -c 'import pip' >/dev/null 2>&1; then
    _manet_make_venv "$base" >&2 || return 1
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "no project environment in $(pwd)/.venv: run bash scripts/setup.sh first" >&2
    return 1
  fi
  echo "$(pwd)/.venv/bin/python"
}

# Create .venv with `base`; when its venv/ensurepip modules are missing (Debian and Ubuntu ship them in
# pythonX.Y-venv), install that package when root, else say which package to install.
_manet_make_venv() {
  local base="$1" version package
  version=$("$base" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  if ! "$base" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    package="python${version}-venv"
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      echo "$base has no venv/ensurepip module: installing ${package}" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
    elif command -v apt-get >/dev/null; then
      echo "$base has no venv/ensurepip module: run  sudo apt-get install ${package}  then run this again" >&2
      return 1
    else
      echo "$base has no venv/ensurepip module: install your distribution's venv package for Python" \
           "${version} (or use a python.org, pyenv or conda Python), then run this again" >&2
      return 1
    fi
  fi
  echo "creating the project environment .venv with $base (Python ${version})" >&2
  rm -rf .venv
  "$base" -m venv .venv
}
