"""Entry point: ``python -m controlplane {migrate,serve} ...``."""

import sys

from controlplane.cli import main

sys.exit(main())
