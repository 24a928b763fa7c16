"""Settings for the whole test run (tests/ and the docstring examples).

The models under test are small: one torch thread avoids OpenMP spin-waiting, which
turns a 0.2 ms convolution into 30 ms whenever another process (or dask's thread
pool) is using the second core.
"""

import torch

torch.set_num_threads(1)
