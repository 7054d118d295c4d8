#!/usr/bin/env bash
# Checks the Debian packages petition-delivery needs (scripts/system-packages.txt) and installs
# the missing ones with apt-get when run as root; otherwise prints the exact command and fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
missing=()
# Captured once: `producer | grep -q` under pipefail fails when grep stops reading early.
libs=$(ldconfig -p 2>/dev/null || true)
fonts=$(fc-list : family 2>/dev/null || true)
while read -r package check; do
  [[ -z "$package" || "$package" == \#* ]] && continue
  kind=${check%%:*}; what=${check#*:}
  case "$kind" in
    lib)  grep -qF "$what" <<<"$libs" || missing+=("$package") ;;
    cmd)  command -v "$what" >/dev/null 2>&1 || missing+=("$package") ;;
    font) grep -qF "$what" <<<"$fonts" || missing+=("$package") ;;
    venv) python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=("$package") ;;
  esac
done < "$here/system-packages.txt"
if [[ -n "${EXTRA_SYSTEM_PACKAGES:-}" ]]; then
  for p in $EXTRA_SYSTEM_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  $cmd -qq
  fc-cache -f >/dev/null 2>&1 || true
else
  echo "petition-delivery needs these system packages: ${missing[*]}" >&2
  echo "install them with:  sudo apt-get update && sudo $cmd" >&2
  exit 1
fi
