#!/usr/bin/env bash
# Install the real gateways gwconf audits into <repo>/.gateways/ (gitignored).
#
#   gateways/install.sh [litellm|portkey|all]     (default: all)
#
# - LiteLLM proxy: own venv .gateways/litellm-venv with litellm[proxy]==1.106.12
#   (never 1.107.0: a compromised release), plus prisma==0.15.0 (the Python
#   package only, no database): without it the proxy's error path imports
#   `prisma` and a request with no key gets 500 "Internal Server Error" instead
#   of LiteLLM's 401 (LiteLLM's own Docker image ships prisma). Set
#   GWCONF_LITELLM_PRISMA=0 to leave it out.
# - Portkey gateway: .gateways/portkey/ with a wrapper package.json pinning
#   @portkey-ai/gateway@1.15.2 and forcing @hono/node-server to 1.14.1 through
#   npm "overrides" (1.19.x, what a plain install resolves, turns every
#   pass-through response into 500 "Something went wrong": Portkey-AI/gateway#1389;
#   1.14.2 is still broken).
#
# Idempotent: an install already present at the right versions is skipped.
# Environment overrides: GWCONF_GATEWAYS_DIR (install root), PYTHON (interpreter
# for the LiteLLM venv, default python3), NPM (default npm).
set -euo pipefail

LITELLM_VERSION="1.106.12"
PRISMA_VERSION="0.15.0"
WITH_PRISMA="${GWCONF_LITELLM_PRISMA:-1}"
PORTKEY_VERSION="1.15.2"
HONO_NODE_SERVER_VERSION="1.14.1"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GW_DIR="${GWCONF_GATEWAYS_DIR:-$REPO_ROOT/.gateways}"
PYTHON="${PYTHON:-python3}"
NPM="${NPM:-npm}"

target="${1:-all}"
case "$target" in
  litellm|portkey|all) ;;
  -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
  *) echo "usage: $0 [litellm|portkey|all]" >&2; exit 2 ;;
esac

mkdir -p "$GW_DIR"

log() { printf '[install] %s\n' "$*" >&2; }

litellm_installed_version() {
  local py="$GW_DIR/litellm-venv/bin/python"
  [[ -x "$py" ]] || return 1
  "$py" - <<'EOF' 2>/dev/null
import importlib.metadata as m
print(m.version("litellm"))
# the proxy extra must be there too (fastapi, uvicorn, ...)
import fastapi, uvicorn, yaml  # noqa: F401
EOF
}

prisma_ok() {
  [[ "$WITH_PRISMA" == 1 ]] || return 0
  local v
  v="$("$GW_DIR/litellm-venv/bin/python" -c 'import importlib.metadata as m; print(m.version("prisma"))' 2>/dev/null || true)"
  [[ "$v" == "$PRISMA_VERSION" ]]
}

install_litellm() {
  local venv="$GW_DIR/litellm-venv" have
  have="$(litellm_installed_version || true)"
  if [[ "$have" == "$LITELLM_VERSION" && -x "$venv/bin/litellm" ]] && prisma_ok; then
    log "litellm $LITELLM_VERSION already installed in $venv: skipped"
    return 0
  fi
  if [[ -n "$have" ]]; then
    log "litellm $have found in $venv (want $LITELLM_VERSION; prisma wanted: $WITH_PRISMA): installing"
  fi
  if [[ ! -x "$venv/bin/python" ]]; then
    log "creating venv $venv ($("$PYTHON" --version 2>&1))"
    "$PYTHON" -m venv "$venv"
  fi
  local reqs=("litellm[proxy]==$LITELLM_VERSION")
  [[ "$WITH_PRISMA" == 1 ]] && reqs+=("prisma==$PRISMA_VERSION")
  log "pip install ${reqs[*]}"
  # (this machine's pip config lists extra local indexes whose missing folders
  # print one harmless warning per package: filtered out of stderr)
  { "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      "${reqs[@]}" 2>&1 1>&3 \
      | { grep -v "is ignored: it is neither a file nor a directory" || true; } >&2; } 3>&1
  have="$(litellm_installed_version || true)"
  if [[ "$have" != "$LITELLM_VERSION" ]] || ! prisma_ok; then
    echo "litellm install failed: found litellm '${have:-nothing}' (want $LITELLM_VERSION)," \
      "prisma wanted: $WITH_PRISMA" >&2
    return 1
  fi
}

node_pkg_version() {  # <node_modules dir> <package name>
  local f="$1/$2/package.json"
  [[ -f "$f" ]] || return 1
  node -e 'process.stdout.write(require(process.argv[1]).version)' "$f"
}

portkey_ok() {
  local nm="$GW_DIR/portkey/node_modules" pv hv
  pv="$(node_pkg_version "$nm" "@portkey-ai/gateway" 2>/dev/null || true)"
  hv="$(node_pkg_version "$nm" "@hono/node-server" 2>/dev/null || true)"
  [[ "$pv" == "$PORTKEY_VERSION" && "$hv" == "$HONO_NODE_SERVER_VERSION" ]] || return 1
  # no nested, un-overridden copy of @hono/node-server anywhere
  local other
  other="$(find "$nm" -path '*/@hono/node-server/package.json' -not -path "$nm/@hono/node-server/package.json" 2>/dev/null | head -n1)"
  [[ -z "$other" ]]
}

install_portkey() {
  local dir="$GW_DIR/portkey"
  mkdir -p "$dir"
  cat >"$dir/package.json.new" <<EOF
{
  "name": "gwconf-portkey-gateway",
  "private": true,
  "description": "Pinned Portkey gateway for gwconf audits (written by gateways/install.sh)",
  "dependencies": {
    "@portkey-ai/gateway": "$PORTKEY_VERSION"
  },
  "overrides": {
    "@hono/node-server": "$HONO_NODE_SERVER_VERSION"
  }
}
EOF
  if [[ -f "$dir/package.json" ]] && cmp -s "$dir/package.json" "$dir/package.json.new" && portkey_ok; then
    rm -f "$dir/package.json.new"
    log "@portkey-ai/gateway $PORTKEY_VERSION (@hono/node-server $HONO_NODE_SERVER_VERSION) already installed in $dir: skipped"
    return 0
  fi
  mv "$dir/package.json.new" "$dir/package.json"
  log "npm install @portkey-ai/gateway@$PORTKEY_VERSION with @hono/node-server overridden to $HONO_NODE_SERVER_VERSION"
  (cd "$dir" && "$NPM" install --no-audit --no-fund --loglevel=error)
  if ! portkey_ok; then
    echo "portkey install failed: wrong @portkey-ai/gateway or @hono/node-server version in $dir/node_modules" >&2
    return 1
  fi
}

timed() {  # <name> <function>
  local name="$1" fn="$2" t0 t1
  t0=$(date +%s.%N)
  "$fn"
  t1=$(date +%s.%N)
  awk -v n="$name" -v a="$t0" -v b="$t1" 'BEGIN { printf "[install] %s: done in %.1f s\n", n, b - a }' >&2
}

if [[ "$target" == litellm || "$target" == all ]]; then
  timed litellm install_litellm
fi
if [[ "$target" == portkey || "$target" == all ]]; then
  timed portkey install_portkey
fi
log "gateways in $GW_DIR"
