# Sourced by scripts and benches: install missing commands from Debian.
#
#   need_commands COMMAND:PACKAGE ...
# installs PACKAGE (with sudo when not root) for every COMMAND not on PATH.
need_commands() {
  local need=() t
  for t in "$@"; do
    command -v "${t%%:*}" >/dev/null || need+=("${t##*:}")
  done
  [ ${#need[@]} -gt 0 ] || return 0
  echo "== installing ${need[*]} (Debian packages)"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
}
