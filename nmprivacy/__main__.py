"""``python -m nmprivacy`` runs the command line."""

import sys

from nmprivacy.cli import main

sys.exit(main())
