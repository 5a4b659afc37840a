"""``python -m benchmarks.attack_cost``: the benchmark's command line."""

import sys

from benchmarks.attack_cost.cli import main
from nmprivacy.errors import NmprivacyError

try:
    sys.exit(main())
except NmprivacyError as exc:
    print(f"error: {exc}", file=sys.stderr)
    sys.exit(2)
