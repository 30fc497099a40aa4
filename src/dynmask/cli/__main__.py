"""``python -m dynmask.cli``."""

import sys

from . import main

sys.exit(main())
