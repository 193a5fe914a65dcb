#!/usr/bin/env bash
# Installs a CUDA PJRT plugin and the NVIDIA libraries it needs, from PyPI, for `-device cuda`.
#
# The plugin is JAX's: the wheel jax-cuda13-pjrt (CUDA 13, NVIDIA driver 580 or newer) or
# jax-cuda12-pjrt (CUDA 12, driver 525 or newer), chosen by the CUDA version nvidia-smi reports.
# The NVIDIA libraries are the wheels that `pip install jax-cudaNN-plugin[with-cuda]` would add
# (cuBLAS, cuDNN, cuFFT, cuSOLVER, cuSPARSE, NCCL, nvJitLink, NVRTC, CUPTI, NVSHMEM, the CUDA
# runtime, and nvcc's ptxas with NVVM's libdevice), every one pinned below by version and sha256.
# For CUDA 13 they are CUDA 13.0's (what a 580 driver runs natively; newer drivers run them too).
#
# Nothing is installed when python3 already has JAX's CUDA plugin in its site-packages (or in
# $SMI_CUDA_SITE_PACKAGES): the programs use that one. Otherwise the wheels are downloaded with pip
# into ~/.cache/smi-gomlx/wheels ($SMI_CACHE_DIR/wheels), checked, and unpacked into
# ~/.local/lib/smi-gomlx/cuda13 (or cuda12; $SMI_PJRT_DIR/...) in site-packages' layout:
# jax_plugins/xla_cuda13/xla_cuda_plugin.so and nvidia/<package>/{lib,bin,nvvm}. It says how much
# it will download (the pinned wheels' sizes) before it does, and what the installed tree takes.
#
# Idempotent: a second run checks a stamp file and returns at once. SMI_PJRT_FORCE=1 reinstalls (and
# installs even when JAX's plugin is present). SMI_CUDA_DRY_RUN=1 prints what it would install and
# stops; SMI_CUDA_FLAVOR=cuda13|cuda12 overrides the choice by driver.
# Usage: [SMI_CUDA_DRY_RUN=1] scripts/install-xla-cuda.sh   (no arguments; -h prints this)
set -euo pipefail
case ${1:-} in
  -h | -help | --help) sed -n '2,/^set -euo pipefail/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
esac
(($# == 0)) || { echo "install-xla-cuda: takes no arguments, got: $* (settings are environment variables; -h for help)" >&2; exit 2; }

JAX_VERSION="0.11.2"

# One wheel a line: requirement, file, sha256, size in bytes (as PyPI lists the file).
CUDA13_WHEELS="
jax-cuda13-pjrt==0.11.2 jax_cuda13_pjrt-0.11.2-py3-none-manylinux_2_27_x86_64.whl e5ff589d43064913bb74027682d89639c7ea48f9f81c2bae6fc75117e913f93e 134162640
nvidia-cublas==13.0.2.14 nvidia_cublas-13.0.2.14-py3-none-manylinux_2_27_x86_64.whl 0cf238ffdbe46c00cb9aa98e7bca745c223a5ca5a53e686ac8b3e5a08fe80d6c 420882912
nvidia-cuda-cupti==13.0.85 nvidia_cuda_cupti-13.0.85-py3-none-manylinux_2_25_x86_64.whl 4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8 10715597
nvidia-cuda-nvcc==13.0.88 nvidia_cuda_nvcc-13.0.88-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl 56fe502eb77625a12f25172caa3cdddb4e4c8ba2c8c17dba44b164761b380f03 37384532
nvidia-cuda-nvrtc==13.0.88 nvidia_cuda_nvrtc-13.0.88-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl ad9b6d2ead2435f11cbb6868809d2adeeee302e9bb94bcf0539c7a40d80e8575 90215200
nvidia-cuda-runtime==13.0.96 nvidia_cuda_runtime-13.0.96-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl 7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548 2243632
nvidia-cudnn-cu13==9.28.1.4 nvidia_cudnn_cu13-9.28.1.4-py3-none-manylinux_2_27_x86_64.whl a54f205b1db1f2895d99f398754db1369816f0569dd459731f925635cf7b65ec 516817937
nvidia-cufft==12.0.0.61 nvidia_cufft-12.0.0.61-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl 6c44f692dce8fd5ffd3e3df134b6cdb9c2f72d99cf40b62c32dde45eea9ddad3 214085489
nvidia-cusolver==12.0.9.81 nvidia_cusolver-12.0.9.81-py3-none-manylinux_2_27_x86_64.whl 5d28371e1301d1edfb15b8b1201e24cd680bc72de7f384cc162c7edbd8c5348c 202032975
nvidia-cusparse==12.6.3.3 nvidia_cusparse-12.6.3.3-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl 2b3c89c88d01ee0e477cb7f82ef60a11a4bcd57b6b87c33f789350b59759360b 145942937
nvidia-nccl-cu13==2.32.6 nvidia_nccl_cu13-2.32.6-py3-none-manylinux_2_27_x86_64.whl 76e7aad00482092baf01e13e66f441d54c96b5cf1e3f143dee27db7f731d41ba 206592996
nvidia-nvjitlink==13.0.88 nvidia_nvjitlink-13.0.88-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl 13a74f429e23b921c1109976abefacc69835f2f433ebd323d3946e11d804e47b 40713933
nvidia-nvshmem-cu13==3.8.0 nvidia_nvshmem_cu13-3.8.0-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl 81a4d1f666543e6d34df6d2ff940c7da1435e34e186aab6f3c2b48861b64ef38 182092449
nvidia-nvvm==13.0.88 nvidia_nvvm-13.0.88-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl c5f41ffeb6466944a026dfa5317d7d85355c119bbec279205d22f1869d1054e0 61601415
"
CUDA12_WHEELS="
jax-cuda12-pjrt==0.11.2 jax_cuda12_pjrt-0.11.2-py3-none-manylinux_2_27_x86_64.whl 2133b3afc63307c016ae4980f166b2b3de199759363ead74f7d550eaae953463 188235313
nvidia-cublas-cu12==12.9.3.13 nvidia_cublas_cu12-12.9.3.13-py3-none-manylinux_2_27_x86_64.whl d7d51055f161b317c7105ddaae90e71eda059026074ffef93cf7cde2886bfe72 581217458
nvidia-cuda-cupti-cu12==12.9.79 nvidia_cuda_cupti_cu12-12.9.79-py3-none-manylinux_2_25_x86_64.whl 096bcf334f13e1984ba36685ad4c1d6347db214de03dbb6eebb237b41d9d934f 10814997
nvidia-cuda-nvcc-cu12==12.9.86 nvidia_cuda_nvcc_cu12-12.9.86-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl 5d6a0d32fdc7ea39917c20065614ae93add6f577d840233237ff08e9a38f58f0 40546229
nvidia-cuda-nvrtc-cu12==12.9.86 nvidia_cuda_nvrtc_cu12-12.9.86-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl 210cf05005a447e29214e9ce50851e83fc5f4358df8b453155d5e1918094dcb4 89568129
nvidia-cuda-runtime-cu12==12.9.79 nvidia_cuda_runtime_cu12-12.9.79-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl 25bba2dfb01d48a9b59ca474a1ac43c6ebf7011f1b0b8cc44f54eb6ac48a96c3 3493179
nvidia-cudnn-cu12==9.28.0.42 nvidia_cudnn_cu12-9.28.0.42-py3-none-manylinux_2_27_x86_64.whl 9ff58b7f36dacd0a93e89f8f2957b52466889217963701daa15e577317cfa375 716538495
nvidia-cufft-cu12==11.4.1.4 nvidia_cufft_cu12-11.4.1.4-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl c67884f2a7d276b4b80eb56a79322a95df592ae5e765cf1243693365ccab4e28 200877592
nvidia-cusolver-cu12==11.7.5.82 nvidia_cusolver_cu12-11.7.5.82-py3-none-manylinux_2_27_x86_64.whl 15da72d1340d29b5b3cf3fd100e3cd53421dde36002eda6ed93811af63c40d88 338117415
nvidia-cusparse-cu12==12.5.10.65 nvidia_cusparse_cu12-12.5.10.65-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl 73060ce019ac064a057267c585bf1fd5a353734151f87472ff02b2c5c9984e78 366465088
nvidia-nccl-cu12==2.32.3 nvidia_nccl_cu12-2.32.3-py3-none-manylinux_2_27_x86_64.whl bb94b2348e4861d5e8aa00b36c3d12d9bdf9c6369b82cbb723de0b582280a21c 351526311
nvidia-nvjitlink-cu12==12.9.86 nvidia_nvjitlink_cu12-12.9.86-py3-none-manylinux2010_x86_64.manylinux_2_12_x86_64.whl e3f1171dbdc83c5932a45f0f4c99180a70de9bd2718c1ab77d14104f6d7147f9 39748338
nvidia-nvshmem-cu12==3.8.0 nvidia_nvshmem_cu12-3.8.0-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.whl b2e5760d6158aefe7bb74348d5128bb1b46a7dd1fd4b7b1e6fe55b4b07888f70 280800183
"

DEST_BASE="${SMI_PJRT_DIR:-$HOME/.local/lib/smi-gomlx}"
CACHE_DIR="${SMI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/smi-gomlx}/wheels"
DRY_RUN="${SMI_CUDA_DRY_RUN:-0}"
FORCE="${SMI_PJRT_FORCE:-0}"
# A switch given another value is refused rather than read as "off": a misspelt dry run would
# download gigabytes.
for v in "SMI_CUDA_DRY_RUN=$DRY_RUN" "SMI_PJRT_FORCE=$FORCE"; do
  [[ ${v#*=} == 0 || ${v#*=} == 1 ]] || { echo "install-xla-cuda: ${v%%=*} must be 0 or 1, got '${v#*=}'" >&2; exit 2; }
done

say() { echo "install-xla-cuda: $*"; }
fail() {
  echo "install-xla-cuda: $*" >&2
  exit 1
}

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) fail "JAX's CUDA plugin wheels exist here only for Linux x86_64, and this is $(uname -s)/$(uname -m)." ;;
esac

# 1. The NVIDIA driver, and the CUDA version it supports.
driver_cuda=""
if smi_out=$(nvidia-smi 2>&1) && [[ "$smi_out" == *NVIDIA-SMI* ]]; then
  driver_cuda=$(sed -n 's/.*CUDA Version: *\([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' <<<"$smi_out" | head -1)
  say "NVIDIA driver found: it supports CUDA ${driver_cuda:-(version not shown by nvidia-smi)}"
else
  if command -v nvidia-smi >/dev/null 2>&1; then
    reason="nvidia-smi failed: $(head -1 <<<"$smi_out")"
  else
    reason="nvidia-smi is not on PATH"
  fi
  msg="no NVIDIA driver found ($reason). The CUDA plugin needs an NVIDIA GPU and its driver (580 or newer for CUDA 13, 525 or newer for CUDA 12); install the driver, or train on the CPU with 'make run'."
  [[ "$DRY_RUN" == 1 ]] || fail "$msg"
  say "$msg"
  say "dry run: going on with ${SMI_CUDA_FLAVOR:-cuda13}, as if the driver supported it"
fi

flavor="${SMI_CUDA_FLAVOR:-}"
if [[ -z "$flavor" ]]; then
  major="${driver_cuda%%.*}"
  if [[ -z "$major" ]] || ((major >= 13)); then
    flavor=cuda13
  elif ((major == 12)); then
    flavor=cuda12
  else
    fail "the NVIDIA driver supports CUDA $driver_cuda only; JAX's CUDA plugins need CUDA 12 (driver 525 or newer) or CUDA 13 (driver 580 or newer). Update the driver."
  fi
fi
case "$flavor" in
  cuda13) wheels="$CUDA13_WHEELS" ;;
  cuda12) wheels="$CUDA12_WHEELS" ;;
  *) fail "SMI_CUDA_FLAVOR=$flavor: want cuda13 or cuda12" ;;
esac
flavor_major="${flavor#cuda}"

# 2. JAX's plugin, installed already where the programs look first.
if [[ "$FORCE" != 1 ]]; then
  if [[ -n "${SMI_CUDA_SITE_PACKAGES:-}" ]]; then
    site_dirs="$SMI_CUDA_SITE_PACKAGES"
  elif command -v python3 >/dev/null 2>&1; then
    # The question internal/backend asks python3 (it embeds the same file).
    site_dirs=$(timeout 10 python3 "$(dirname "$0")/../internal/backend/site_packages.py" 2>/dev/null || true)
  else
    site_dirs=""
  fi
  while IFS= read -r dir; do
    [[ -n "$dir" ]] || continue
    for f in cuda13 cuda12; do
      plugin="$dir/jax_plugins/xla_$f/xla_cuda_plugin.so"
      if [[ -f "$plugin" ]] && { [[ -z "$driver_cuda" ]] || ((${f#cuda} <= ${driver_cuda%%.*})); }; then
        say "JAX's CUDA plugin is installed already: $plugin, with the NVIDIA libraries of $dir/nvidia. -device cuda uses it; nothing to install (SMI_PJRT_FORCE=1 installs the project's own copy anyway)."
        exit 0
      fi
    done
  done <<<"$site_dirs"
fi

# 3. Installed already by this script.
DEST="$DEST_BASE/$flavor"
PLUGIN="$DEST/jax_plugins/xla_$flavor/xla_cuda_plugin.so"
STAMP="$DEST/.smi-cuda.stamp"
STAMP_TEXT="$(cut -d' ' -f1-3 <<<"$wheels" | sha256sum | cut -d' ' -f1)" # the sizes joined the pins later
if [[ "$FORCE" != 1 && -f "$PLUGIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_TEXT" ]]; then
  say "CUDA plugin already installed: $PLUGIN (jax-$flavor-pjrt $JAX_VERSION and its NVIDIA libraries)"
  exit 0
fi

sha_ok() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }
gb() { awk -v b="$1" 'BEGIN { if (b >= 1e9) printf "%.2f GB", b / 1e9; else printf "%.0f MB", b / 1e6 }'; }

# 4. What to download.
missing=()
missing_bytes=0
plan=""
while read -r req file sha size; do
  [[ -n "$req" ]] || continue
  if [[ -f "$CACHE_DIR/$file" ]] && sha_ok "$CACHE_DIR/$file" "$sha"; then
    state="cached"
  else
    state="to download"
    missing+=("$req")
    missing_bytes=$((missing_bytes + size))
  fi
  plan+="  $req  ($file, $(gb "$size"), sha256 ${sha:0:12}…, $state)"$'\n'
done <<<"$wheels"

if [[ "$DRY_RUN" == 1 ]]; then
  say "dry run: would install the $flavor plugin (driver CUDA ${driver_cuda:-unknown}) from these wheels into $DEST:"
  printf '%s' "$plan"
  say "dry run: ${#missing[@]} wheel(s), $(gb "$missing_bytes"), to download into $CACHE_DIR; nothing downloaded or installed."
  exit 0
fi

mkdir -p "$DEST_BASE" "$CACHE_DIR"
if ((${#missing[@]} > 0)); then
  command -v python3 >/dev/null 2>&1 || fail "python3 is needed to download the wheels from PyPI, and it is not on PATH.
Install Python 3 with pip, or put these wheels into $CACHE_DIR yourself and run this script again:
$plan"
  say "downloading ${#missing[@]} wheel(s), $(gb "$missing_bytes"), from PyPI into $CACHE_DIR ..."
  if ! log=$(python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check \
      --timeout 60 --retries 3 --python-version 3 \
      --platform manylinux_2_27_x86_64 --platform manylinux_2_25_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64 \
      -d "$CACHE_DIR" "${missing[@]}" 2>&1); then
    reason=$(echo "$log" | grep -E '^ERROR' | head -1)
    fail "could not download the wheels from PyPI with pip (${reason:-no reason given}), so the CUDA plugin is not installed. Check that pip can reach PyPI or your mirror (PIP_INDEX_URL) and run 'make setup-cuda' again; offline, copy these wheels into $CACHE_DIR and rerun:
$plan"
  fi
fi

files=()
while read -r req file sha _; do
  [[ -n "$req" ]] || continue
  [[ -f "$CACHE_DIR/$file" ]] || fail "pip did not leave $file in $CACHE_DIR (for $req); your index may serve another build. Download that exact file and rerun."
  sha_ok "$CACHE_DIR/$file" "$sha" || fail "$CACHE_DIR/$file does not have the pinned sha256 $sha (got $(sha256sum "$CACHE_DIR/$file" | cut -d' ' -f1)).
Delete it and run 'make setup-cuda' again; if it persists, your package index serves a different file."
  files+=("$CACHE_DIR/$file")
done <<<"$wheels"

# 5. Unpack jax_plugins/ and nvidia/ of every wheel, as pip would into site-packages, then move
# the whole tree into place.
say "unpacking ${#files[@]} wheels into $DEST ..."
tmp=$(mktemp -d "$DEST_BASE/.$flavor.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" "${files[@]}" <<'PY'
import os, shutil, sys, zipfile
out, wheels = sys.argv[1], sys.argv[2:]
for wheel in wheels:
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            parts = info.filename.split("/")
            if info.is_dir() or parts[0] not in ("jax_plugins", "nvidia"):
                continue
            if ".." in parts or info.filename.startswith("/"):
                sys.exit("unsafe path %r in %s" % (info.filename, wheel))
            path = os.path.join(out, *parts)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with z.open(info) as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            mode = (info.external_attr >> 16) & 0o777
            executable = mode & 0o111 or "bin" in parts[:-1]
            os.chmod(path, 0o755 if executable else 0o644)
PY
[[ -f "$tmp/jax_plugins/xla_$flavor/xla_cuda_plugin.so" ]] || fail "the wheels did not hold jax_plugins/xla_$flavor/xla_cuda_plugin.so"
rm -rf "$DEST"
mv "$tmp" "$DEST"
trap - EXIT
echo "$STAMP_TEXT" >"$STAMP"
say "installed the CUDA plugin $PLUGIN (jax-$flavor-pjrt $JAX_VERSION) and the NVIDIA libraries in $DEST/nvidia ($(du -sh "$DEST" | cut -f1)); train on the GPU with -device cuda. The downloaded wheels stay in $CACHE_DIR (delete them to free the space; a reinstall then downloads them again)."
