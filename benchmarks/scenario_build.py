"""How long a generated scenario takes to build from scratch (empty cache), with one traffic
demand and with all of them.

    python benchmarks/scenario_build.py [--scenario grid6]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from marlo_rllib.errors import UserError
from marlo_rllib.scenarios import load_scenario
from marlo_rllib.scenarios.generate import build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="grid6")
    args = parser.parse_args()
    try:
        spec = load_scenario(args.scenario)
    except UserError as exc:
        parser.exit(2, f"scenario_build.py: error: {exc}\n")
    if spec.network is None:
        parser.exit(
            2,
            f"scenario_build.py: error: {args.scenario} ships its network; only generated ones (e.g. grid6) are built\n",
        )
    for label, traffic in (("one traffic scenario", spec.traffic[:1]), (f"all {len(spec.traffic)}", spec.traffic)):
        os.environ["MARLO_CACHE"] = tempfile.mkdtemp(prefix="marlo-cache-")
        started = time.perf_counter()
        build(spec.name, spec.network, traffic)
        built = time.perf_counter() - started
        started = time.perf_counter()
        _, hit = build(spec.name, spec.network, traffic)
        print(
            f"{spec.name}, {label} ({', '.join(t.name for t in traffic)}): built in {built:.1f} s; "
            f"second build a cache hit: {hit} ({time.perf_counter() - started:.3f} s)"
        )


if __name__ == "__main__":
    main()
