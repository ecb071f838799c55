"""Settings for every pytest run, including the notebook kernels that nbval starts (they inherit
this process's environment): CPU only, so stored outputs are reproducible and no GPU warning
appears on stderr; and one JAX compilation cache for the whole run, so that the many
processes that compile the same programs (a run and its resumed continuation, the command
line's tests) compile each of them once."""

import atexit
import os
import shutil
import tempfile

os.environ["JAX_PLATFORMS"] = "cpu"
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    cache = tempfile.mkdtemp(prefix="fasttd3-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = cache
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
