"""A `fope reproduce` process for test_runner's SIGTERM test: its grid sleeps instead of training (run as a script)."""

from __future__ import annotations

import sys
import time

if __name__ == "__main__":
    import fope.reproduce.scheduler as scheduler
    from fope.cli import main

    def sleepy_grid(grid, out, **kwargs):
        time.sleep(600)

    scheduler.run_grid = sleepy_grid
    sys.exit(main(["reproduce", "--preset", "cpu-quick", "--out", sys.argv[1], "--no-figures"]))
