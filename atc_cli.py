"""`python atc_cli.py ...` is `marlo ...`."""

import sys

from marlo_rllib.cli import main

if __name__ == "__main__":
    sys.exit(main())
