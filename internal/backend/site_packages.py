# Prints the directories python3 installs packages into, one a line: where JAX's CUDA plugin and
# the NVIDIA wheels are looked for. Read by internal/backend (embedded) and by
# scripts/install-xla-cuda.sh, so that both ask python3 the same question.
import site, sys
ps = []
try: ps += site.getsitepackages()
except Exception: pass
try: ps.append(site.getusersitepackages())
except Exception: pass
ps += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
print("\n".join(ps))
