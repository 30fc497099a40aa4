import os
import sys
from pathlib import Path

import torch
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))  # shared test helpers (guarantee.py)
torch.set_num_threads(min(2, torch.get_num_threads()))

# CI runs the same examples every time (reproducible); locally Hypothesis explores new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
