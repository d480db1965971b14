"""``python -m benchmarks [--quick|--full]``: see :mod:`benchmarks.runner`."""

import sys

from .runner import main

sys.exit(main())
