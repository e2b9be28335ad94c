#!/usr/bin/env bash
# Turns "--some-name value" arguments into assignments of the variable some_name, which the
# calling script must already define (as Kaldi's utils/parse_options.sh does). Source it after
# setting defaults:  . "$(dirname "$0")/parse_options.sh"
# "--help" prints the variables that can be set and exits.

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "usage: $0 [--option value ...]; options (current values):"
      for _v in ${_recipe_vars:-}; do printf '  --%s %s\n' "${_v//_/-}" "${!_v}"; done
      exit 0
      ;;
    --*)
      _name="${1#--}"; _name="${_name//-/_}"
      if [ -z "${!_name+set}" ]; then
        echo "$0: unknown option $1" >&2; exit 1
      fi
      if [ $# -lt 2 ]; then
        echo "$0: option $1 needs a value" >&2; exit 1
      fi
      printf -v "$_name" '%s' "$2"
      shift 2
      ;;
    *)
      echo "$0: unexpected argument '$1' (options are --name value)" >&2; exit 1
      ;;
  esac
done
