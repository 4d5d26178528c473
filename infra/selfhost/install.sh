#!/bin/sh
# Gateway install for a Linux VM: HAProxy from the distribution, the gateway agent from the
# control plane (checked against its SHA-256), a systemd unit, then wait for the instance.
#
#   curl -fsSL __CONTROL_PLANE_URL__/install.sh | sudo GATEWAY_TOKEN=gct_... sh
#   curl -fsSL __CONTROL_PLANE_URL__/install.sh | sudo sh -s -- --uninstall
#
# Re-running it upgrades in place. Settings, from the environment: GATEWAY_TOKEN (required),
# GATEWAY_HTTP_PORT (80), GATEWAY_HTTPS_PORT (443), GATEWAY_METRICS_PORT (9101),
# GATEWAY_INSECURE_HTTP (1 lets the agent use a plain-http control plane off loopback).
# The agent and HAProxy run as the system user gateway-agent, which may bind ports below 1024
# (CAP_NET_BIND_SERVICE) and nothing more.
# The whole body is in main(), called on the last line: a truncated download runs nothing.

set -eu

CONTROL_PLANE_URL="__CONTROL_PLANE_URL__"
AGENT_VERSION="__AGENT_VERSION__"
AGENT_WHEEL_SHA256="__AGENT_WHEEL_SHA256__"

# Everything the script touches lives under ROOT ("" on a real machine; tests point it elsewhere).
ROOT="${GATEWAY_INSTALL_ROOT:-}"
PREFIX="$ROOT/opt/gateway-agent"
CONFIG_DIR="$ROOT/etc/gateway-agent"
DATA_DIR="$ROOT/var/lib/gateway-agent"
UNIT_FILE="$ROOT/etc/systemd/system/gateway-agent.service"
SERVICE_USER="gateway-agent"

say() { printf '%s\n' "gateway-install: $*" >&2; }
die() { say "error: $*"; exit 1; }

detect_package_manager() {
  if [ -r "$ROOT/etc/os-release" ]; then
    # shellcheck disable=SC1091
    . "$ROOT/etc/os-release"
  fi
  case " ${ID:-} ${ID_LIKE:-} " in
    *" debian "*|*" ubuntu "*) echo apt ;;
    *" rhel "*|*" fedora "*|*" centos "*|*" rocky "*|*" almalinux "*) echo dnf ;;
    *) die "unsupported distribution '${ID:-unknown}': Debian, Ubuntu or the RHEL family is needed" ;;
  esac
}

install_packages() {
  case "$1" in
    apt)
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy python3 python3-venv curl ca-certificates
      ;;
    dnf)
      dnf install -y -q haproxy python3 curl ca-certificates
      ;;
  esac
}

check_haproxy_version() {
  version=$(haproxy -v | sed -n 's/.*version \([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p' | head -n 1)
  [ -n "$version" ] || die "cannot read the HAProxy version"
  # shellcheck disable=SC2086
  set -- $version
  if [ "$1" -lt 2 ] || { [ "$1" -eq 2 ] && [ "$2" -lt 6 ]; }; then
    die "HAProxy $1.$2 is too old: 2.6 or newer is needed"
  fi
  say "HAProxy $1.$2 found"
}

install_agent() {
  workdir=$(mktemp -d)
  wheel="$workdir/gateway_agent-$AGENT_VERSION-py3-none-any.whl"
  curl -fsSL -o "$wheel" "$CONTROL_PLANE_URL/downloads/gateway_agent-$AGENT_VERSION-py3-none-any.whl"
  actual=$(sha256sum "$wheel" | cut -d ' ' -f 1)
  [ "$actual" = "$AGENT_WHEEL_SHA256" ] || die "the agent download does not match its SHA-256 ($actual)"
  [ -x "$PREFIX/bin/python" ] || python3 -m venv "$PREFIX"
  "$PREFIX/bin/python" -m pip install --quiet --upgrade "$wheel"
  rm -rf "$workdir"
  say "agent $AGENT_VERSION installed in $PREFIX"
}

create_user() {
  if ! getent passwd "$SERVICE_USER" >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /var/lib/gateway-agent --no-create-home \
      --shell /usr/sbin/nologin "$SERVICE_USER"
    say "created the system user $SERVICE_USER"
  fi
}

write_configuration() {
  mkdir -p "$CONFIG_DIR" "$DATA_DIR" "$(dirname "$UNIT_FILE")"
  umask 077
  cat > "$CONFIG_DIR/env" <<ENV
GATEWAY_CONTROL_PLANE=$CONTROL_PLANE_URL
GATEWAY_TOKEN=$GATEWAY_TOKEN
GATEWAY_DATA_DIR=/var/lib/gateway-agent
GATEWAY_HTTP_PORT=${GATEWAY_HTTP_PORT:-80}
GATEWAY_HTTPS_PORT=${GATEWAY_HTTPS_PORT:-443}
GATEWAY_METRICS_PORT=${GATEWAY_METRICS_PORT:-9101}
GATEWAY_INSECURE_HTTP=${GATEWAY_INSECURE_HTTP:-0}
ENV
  chmod 600 "$CONFIG_DIR/env"
  # The agent's own folder (an install that ran it as root left files it could not replace).
  chown -R "$SERVICE_USER:$SERVICE_USER" "$DATA_DIR"
  chmod 750 "$DATA_DIR"
  umask 022
  cat > "$UNIT_FILE" <<UNIT
[Unit]
Description=Gateway agent (HAProxy driven by the control plane)
After=network-online.target
Wants=network-online.target

[Service]
EnvironmentFile=/etc/gateway-agent/env
ExecStart=/opt/gateway-agent/bin/gateway-agent run
# Its own unprivileged user; ports 80 and 443 through this one capability, which HAProxy inherits.
User=$SERVICE_USER
Group=$SERVICE_USER
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
ProtectSystem=full
ProtectHome=yes
PrivateTmp=yes
Restart=always
RestartSec=2
# Stopping the service stops the agent, then whatever is left (HAProxy, drain readers). A crash
# of the agent restarts the whole gateway too: what HAProxy counted since the agent's last read
# is lost then (docs/billing.md).
KillMode=mixed
LimitNOFILE=200000

[Install]
WantedBy=multi-user.target
UNIT
}

start_service() {
  # The distribution's own HAProxy service would hold the ports: the agent runs HAProxy itself.
  systemctl disable --now haproxy >/dev/null 2>&1 || true
  systemctl daemon-reload
  systemctl enable gateway-agent >/dev/null
  systemctl restart gateway-agent
}

wait_until_online() {
  tries=0
  while [ ! -s "$DATA_DIR/instance.json" ]; do
    tries=$((tries + 1))
    [ "$tries" -le "${GATEWAY_WAIT_SECONDS:-60}" ] || die "the agent did not register in time: journalctl -u gateway-agent"
    sleep 1
  done
  say "the gateway is registered and online; it serves on port ${GATEWAY_HTTP_PORT:-80}"
}

uninstall() {
  systemctl disable --now gateway-agent >/dev/null 2>&1 || true
  rm -f "$UNIT_FILE"
  systemctl daemon-reload || true
  rm -rf "$PREFIX" "$CONFIG_DIR" "$DATA_DIR"
  say "removed the gateway agent (HAProxy, a distribution package, stays installed)"
}

main() {
  [ "$(id -u)" -eq 0 ] || [ -n "$ROOT" ] || die "run as root (sudo)"
  if [ "${1:-}" = "--uninstall" ]; then
    uninstall
    return
  fi
  [ -n "${GATEWAY_TOKEN:-}" ] || die "set GATEWAY_TOKEN to a cluster token (gct_...)"
  case "$CONTROL_PLANE_URL" in
    http://127.*|http://localhost*|http://\[::1\]*|https://*) ;;
    *) [ "${GATEWAY_INSECURE_HTTP:-0}" = 1 ] || die "the control plane $CONTROL_PLANE_URL is plain http: the agent refuses it unless GATEWAY_INSECURE_HTTP=1" ;;
  esac
  install_packages "$(detect_package_manager)"
  check_haproxy_version
  install_agent
  create_user
  write_configuration
  start_service
  wait_until_online
}

main "$@"
