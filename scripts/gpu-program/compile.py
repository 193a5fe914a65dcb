"""Compiles exported XLA programs for an NVIDIA GPU on a machine without one.

Usage: python compile.py MANIFEST.json

MANIFEST is what `smibench -sections gpu-programs` writes: the GPU to compile for ("target", an XLA
GpuTargetConfigProto in text format: the device's properties, no device needed) and the programs
("hlo": an HloProto as XLA's --xla_dump_hlo_as_proto writes it before its passes). Each program is
compiled by JAX's CUDA PJRT plugin through jaxlib's compile-only client for that target, and its
optimized HLO text is written to the entry's "compiled" path. The script adds to the manifest the
target's device name, the plugin and jaxlib versions, each program's compile time and any error,
and rewrites it; smibench counts the kernels.

Needs jaxlib, jax and the CUDA PJRT plugin (jax-cuda13-pjrt) with nvcc's ptxas and NVVM's
libdevice from PyPI (`make gpu-program` installs them in a virtual environment of their own).
"""

import json
import os
import sys
import time

# No GPU here: keep JAX on the CPU and skip the CUDA plugin's checks of the runtime libraries
# (CUPTI, the driver) that only a device needs. Both must be set before jax is imported.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_SKIP_CUDA_CONSTRAINTS_CHECK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import importlib.metadata as metadata  # noqa: E402
import logging  # noqa: E402

# The plugin warns that jax-cuda13-plugin (JAX's own CUDA kernels, for running JAX programs) is
# missing; compiling these programs does not use it.
logging.getLogger("jax_plugins.xla_cuda13").setLevel(logging.ERROR)

import jaxlib  # noqa: E402
from jax._src.interpreters import mlir as jax_mlir  # noqa: E402
from jax._src.lib import _jax  # noqa: E402
from jax._src.lib import xla_client  # noqa: E402
from jax._src.lib.mlir import ir  # noqa: E402
from jax.experimental import topologies  # noqa: E402


def hlo_module_proto(data: bytes) -> bytes:
    """Returns the HloModuleProto of an HloProto (field 1), or data itself if it is not one."""

    def varint(i):
        shift = value = 0
        while True:
            byte = data[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, i

    if not data:
        raise ValueError("empty HLO file")
    key, i = varint(0)
    if key == (1 << 3 | 2):  # field 1, length-delimited: HloProto.hlo_module
        n, i = varint(i)
        return data[i : i + n]
    return data


def device_name(target_text: str) -> str:
    for line in target_text.splitlines():
        line = line.strip()
        if line.startswith("device_description_str:"):
            return line.split(":", 1)[1].strip().strip('"')
    return "an unnamed GPU"


def plugin_description() -> str:
    try:
        import jax_plugins.xla_cuda13 as plugin  # the wheel jax-cuda13-pjrt

        path = os.path.join(os.path.dirname(plugin.__file__), "xla_cuda_plugin.so")
        return f"{os.path.basename(path)} of jax-cuda13-pjrt {metadata.version('jax-cuda13-pjrt')}"
    except (ImportError, metadata.PackageNotFoundError) as e:
        raise SystemExit(f"compile.py: JAX's CUDA PJRT plugin (jax-cuda13-pjrt) is not installed in this Python: {e}")


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = sys.argv[1]
    with open(path) as f:
        manifest = json.load(f)
    with open(manifest["target"]) as f:
        target = f.read()
    manifest["device"] = device_name(target)
    manifest["plugin"] = plugin_description()
    manifest["jaxlib"] = jaxlib.__version__
    manifest["options"] = os.environ.get("XLA_FLAGS", "")
    try:
        topology = topologies.get_topology_desc(
            "smi-gpu-program", "cuda", target_config=target, topology="1x1x1"  # one device: one host, one GPU
        )
    except Exception as e:  # the plugin's own message says what is missing
        raise SystemExit(f"compile.py: cannot describe {manifest['device']} to XLA's CUDA plugin: {e}")
    devices = xla_client.DeviceList(tuple(topology.devices[:1]))
    client = topology.devices[0].client
    ctx = jax_mlir.make_ir_context()
    for entry in manifest["programs"]:
        name = f"{entry['preset']} {entry['name']}"
        with open(entry["hlo"], "rb") as f:
            proto = hlo_module_proto(f.read())
        start = time.perf_counter()
        try:
            with ctx:
                module = ir.Module.parse(_jax.mlir.hlo_to_stablehlo(proto))
                executable = client.compile(module, executable_devices=devices, compile_options=xla_client.CompileOptions())
            text = executable.hlo_modules()[0].to_string()
        except Exception as e:
            entry["error"] = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(f"compile.py: {name}: {entry['error']}", file=sys.stderr)
            continue
        entry["seconds"] = round(time.perf_counter() - start, 2)
        with open(entry["compiled"], "w") as f:
            f.write(text)
        print(f"compile.py: {name}: compiled for {manifest['device']} in {entry['seconds']:.1f} s", file=sys.stderr)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
