"""``python -m benchmarks.fuzz [options]``: the fuzz campaign's command line; ``--worker CONFIG``
starts one worker process (what ``benchmarks.fuzz.runner.Worker`` runs)."""

from __future__ import annotations

import json
import sys

from benchmarks.fuzz.runner import main, worker_main

if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        sys.exit(worker_main(json.loads(sys.argv[2])))
    sys.exit(main(sys.argv[1:], prog="python -m benchmarks.fuzz"))
