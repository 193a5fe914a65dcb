#!/usr/bin/env bash
# Installs the XLA CPU PJRT plugin that this project runs on, from PyPI, without GitHub.
#
# OpenXLA publishes its CPU plugin as the wheel `xla-cpu-pjrt` (xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so,
# PJRT C API 0.81). This script downloads that wheel with pip, checks a pinned sha256, and installs
# the library as $SMI_PJRT_DIR/pjrt_c_api_cpu_plugin.so (default ~/.local/lib/smi-gomlx), where the
# project's programs look for it. It never writes to ~/.local/lib/go-xla, so GoMLX's own
# auto-installer keeps working for users who prefer it (GOMLX_BACKEND=xla:cpu).
#
# With a plugin name (`install-xla-cpu.sh NAME`, or PLUGIN=NAME; `make setup PLUGIN=NAME`) it
# installs, in addition, one of the other CPU plugins PyPI carries, in the same way (pinned version
# and sha256), as $SMI_PJRT_DIR/NAME/pjrt_c_api_cpu_plugin.so; the programs load it only when asked
# (SMI_PJRT_PLUGIN=NAME). The choice and the evidence are in docs/SETUP.md. The names:
#   xla-cpu-pjrt            OpenXLA's wheel, the default (PJRT C API 0.81)
#   lammps-jax-pjrt-cpu     third-party build of the XLA of jaxlib 0.11.2 (PJRT C API 0.115)
#   fastatomstruct-xla-cpu  third-party repackaging of zml/pjrt-artifacts' build of 2026-06-23 (PJRT C API 0.106)
#
# Idempotent: a second run checks a stamp file and returns at once. Set SMI_PJRT_FORCE=1 to reinstall.
set -euo pipefail

PLUGIN_NAME="${1:-${PLUGIN:-xla-cpu-pjrt}}"
DEST_DIR="${SMI_PJRT_DIR:-$HOME/.local/lib/smi-gomlx}"
CACHE_DIR="${SMI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/smi-gomlx}/wheels"

# wheel NAME: the pinned wheel of each plugin (project, version, file, sha256, the library in it, its
# PJRT C API version, size to download).
wheel() {
  case "$1" in
    xla-cpu-pjrt)
      WHEEL_NAME="xla-cpu-pjrt" WHEEL_VERSION="0.0.1"
      WHEEL_FILE="xla_cpu_pjrt-0.0.1-py3-none-manylinux_2_27_x86_64.whl"
      WHEEL_SHA256="55837b6b7b47daa717f2d9a5a03563ea0ceaa338d06a81a1e2d3f060d960decc"
      MEMBER="xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so" PJRT_API="0.81" SIZE="64 MB" ;;
    lammps-jax-pjrt-cpu)
      WHEEL_NAME="lammps-jax-pjrt-cpu" WHEEL_VERSION="0.11.2"
      WHEEL_FILE="lammps_jax_pjrt_cpu-0.11.2-py3-none-manylinux_2_27_x86_64.whl"
      WHEEL_SHA256="1319390d948b39f69f7dade496b7c385149d9ca6097a6b62114da113216d9ad1"
      MEMBER="lammps_jax_pjrt_cpu/pjrt_c_api_cpu_plugin.so" PJRT_API="0.115" SIZE="63 MB" ;;
    fastatomstruct-xla-cpu)
      WHEEL_NAME="fastatomstruct-xla-cpu" WHEEL_VERSION="2026.6.23"
      WHEEL_FILE="fastatomstruct_xla_cpu-2026.6.23-py3-none-manylinux_2_27_x86_64.whl"
      WHEEL_SHA256="88b1c430b341b4bea40a37420311c9c75db6e22b46d2ff95b6986577bee6afe9"
      MEMBER="fastatomstruct_xla_cpu/libpjrt_cpu.so" PJRT_API="0.106" SIZE="63 MB" ;;
    *) return 1 ;;
  esac
}

fail() {
  echo "install-xla-cpu: $*" >&2
  exit 1
}

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) fail "the XLA CPU plugins on PyPI exist only for Linux x86_64, and this is $(uname -s)/$(uname -m).
On other platforms, let GoMLX install its own plugin (it needs access to github.com): run with GOMLX_BACKEND=xla:cpu." ;;
esac

wheel "$PLUGIN_NAME" || fail "unknown plugin '$PLUGIN_NAME': want xla-cpu-pjrt (the default), lammps-jax-pjrt-cpu or fastatomstruct-xla-cpu (see docs/SETUP.md)."

if [[ "$PLUGIN_NAME" == xla-cpu-pjrt ]]; then
  TARGET="$DEST_DIR/pjrt_c_api_cpu_plugin.so"
  STAMP="$DEST_DIR/.pjrt_c_api_cpu_plugin.stamp"
  ENABLE=""
else
  TARGET="$DEST_DIR/$PLUGIN_NAME/pjrt_c_api_cpu_plugin.so"
  STAMP="$DEST_DIR/$PLUGIN_NAME/.pjrt_c_api_cpu_plugin.stamp"
  ENABLE="; the programs load it with SMI_PJRT_PLUGIN=$PLUGIN_NAME"
fi
STAMP_TEXT="$WHEEL_FILE $WHEEL_SHA256"

if [[ "${SMI_PJRT_FORCE:-0}" != 1 && -f "$TARGET" && -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_TEXT" ]]; then
  echo "XLA CPU plugin already installed: $TARGET ($WHEEL_NAME $WHEEL_VERSION)$ENABLE"
  exit 0
fi

mkdir -p "$(dirname "$TARGET")" "$CACHE_DIR"
wheel="$CACHE_DIR/$WHEEL_FILE"

sha_ok() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$WHEEL_SHA256" ]]; }

if ! sha_ok "$wheel"; then
  rm -f "$wheel"
  command -v python3 >/dev/null 2>&1 || fail "python3 is needed to download $WHEEL_NAME from PyPI, and it is not on PATH.
Install Python 3 with pip, or download $WHEEL_FILE from PyPI yourself into $CACHE_DIR and run this script again."
  echo "Downloading $WHEEL_NAME==$WHEEL_VERSION from PyPI (about $SIZE) into $CACHE_DIR ..."
  if ! log=$(python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check \
      --timeout 30 --retries 2 --platform manylinux_2_27_x86_64 --python-version 3 \
      -d "$CACHE_DIR" "$WHEEL_NAME==$WHEEL_VERSION" 2>&1); then
    reason=$(echo "$log" | grep -E '^ERROR' | head -1)
    fail "could not download $WHEEL_NAME==$WHEEL_VERSION from PyPI with pip (${reason:-no reason given}), so the XLA CPU plugin is not installed. Check that pip can reach PyPI or your mirror (PIP_INDEX_URL) and run 'make setup' again; offline, copy $WHEEL_FILE (sha256 $WHEEL_SHA256) into $CACHE_DIR and rerun."
  fi
  sha_ok "$wheel" || fail "$wheel does not have the pinned sha256 $WHEEL_SHA256 (got $(sha256sum "$wheel" | cut -d' ' -f1)).
Delete it and run 'make setup' again; if it persists, your package index serves a different file."
fi

tmp=$(mktemp -d "$(dirname "$TARGET")/.extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
python3 - "$wheel" "$MEMBER" "$tmp/plugin.so" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
chmod 0755 "$tmp/plugin.so"
mv -f "$tmp/plugin.so" "$TARGET"
echo "$STAMP_TEXT" > "$STAMP"
echo "Installed XLA CPU plugin: $TARGET (from $WHEEL_NAME $WHEEL_VERSION, PJRT C API $PJRT_API)$ENABLE"
echo "In a GoMLX program of your own: GOMLX_BACKEND=xla:$TARGET,shared_buffers"
