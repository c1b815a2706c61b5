# Sourced by the test scripts that need Python packages (tests/interop,
# tests/peers, tests/lwip/run_tap.sh): one way to get a venv.
#
#   ensure_venv TAG VENV REQUIREMENTS PYTHON
#
# Creates VENV with PYTHON if it has no interpreter yet, and installs the
# pinned REQUIREMENTS whenever they differ from the last install (a copy is
# kept in VENV as the stamp). Bounded: 5 min to create, 10 min to install.
# Returns non-zero (with pip's or venv's message) on failure.
ensure_venv() {
  local tag=$1 venv=$2 reqs=$3 py=$4
  local stamp="$venv/.nopoll-$tag-requirements"
  if [ ! -x "$venv/bin/python" ]; then
    echo "$tag: creating venv $venv with $("$py" -V 2>&1)"
    timeout 300 "$py" -m venv "$venv" || return 1
  fi
  if ! cmp -s "$reqs" "$stamp"; then
    timeout 600 "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$reqs" || return 1
    cp "$reqs" "$stamp"
  fi
}
