"""Settings for every pytest run, including the notebook kernels that nbval starts (they inherit
this process's environment): CPU only, so stored outputs are reproducible and no GPU warning
appears on stderr."""

import os

os.environ["JAX_PLATFORMS"] = "cpu"
