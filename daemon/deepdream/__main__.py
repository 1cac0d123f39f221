"""``python -m deepdream`` runs the command line."""

import sys

from deepdream.cli import main

sys.exit(main())
