"""No traceback from worker processes on SIGTERM: a child that inherited fope's SIGTERM handler (lm-eval's and other
libraries' workers) ends by the signal as usual; an idle grid worker ends quietly too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

_SCRIPT = textwrap.dedent(
    """
    import multiprocessing as mp, os, signal, sys, time
    from fope.utils import raise_on_sigterm
    import fope.reproduce.scheduler as S

    def child(ready):
        if sys.argv[1] == "grid":
            S._init_worker(None, parent=os.getppid())  # an idle grid worker: installed, nothing running
        ready.set()
        time.sleep(30)

    if __name__ == "__main__":
        raise_on_sigterm()
        ready = mp.get_context("fork").Event()
        p = mp.get_context("fork").Process(target=child, args=(ready,))
        p.start()
        ready.wait(20)
        os.kill(p.pid, signal.SIGTERM)
        p.join(20)
        print(p.exitcode)
    """
)


@pytest.mark.parametrize("kind", ["library", "grid"])
def test_sigterm_to_a_worker_prints_no_traceback(tmp_path, kind, drill):
    """SIGTERM to a forked library worker (it inherited fope's handler) and to an idle grid worker: the process
    ends by the signal (exit -15), and nothing is printed (no fope.utils.Terminated traceback)."""
    script = tmp_path / "w.py"
    script.write_text(_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with drill.attempt():
        proc = subprocess.run([sys.executable, str(script), kind], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == str(-signal.SIGTERM), (proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr and "Terminated" not in proc.stderr, proc.stderr
