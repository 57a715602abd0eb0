"""`fope.utils.keep_freed_memory`: large freed tensors are reused instead of being unmapped and faulted back in.

Measured by page-fault counts of child processes (a count, not a timing): the same loop of 64 MiB allocations
with glibc's defaults and with the setting.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys

import pytest

from fope.utils import keep_freed_memory

LOOP = """
import sys, torch
from fope.utils import keep_freed_memory
print(keep_freed_memory())
for _ in range(int(sys.argv[1])):
    x = torch.empty(16 * 1024 * 1024)  # 64 MiB: above glibc's largest mmap threshold
    x.fill_(1.0)
    del x
"""

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's"
)


def _minor_faults(keep: str, n: int = 20) -> tuple[int, str]:
    env = {**os.environ, "FOPE_KEEP_FREED_MEMORY": keep, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", LOOP, str(n)], env=env, stdout=subprocess.PIPE, text=True)
    _, status, ru = os.wait4(proc.pid, 0)
    out = proc.stdout.read().strip() if proc.stdout else ""
    assert os.waitstatus_to_exitcode(status) == 0
    return ru.ru_minflt, out


@glibc_only
def test_keep_freed_memory_stops_refaulting_large_tensors():
    # faults of allocations 2..20 = faults(20 allocations) - faults(1): start-up and the first touch cancel out
    (d20, applied0), (d1, _) = _minor_faults("0", 20), _minor_faults("0", 1)
    (k20, applied1), (k1, _) = _minor_faults("1", 20), _minor_faults("1", 1)
    assert (applied0, applied1) == ("False", "True")
    default, kept = d20 - d1, k20 - k1
    pages = 19 * 64 * 1024 * 1024 // resource.getpagesize()
    assert default > 0.9 * pages, default  # glibc's default: every 64 MiB block is a fresh mapping
    assert kept < default / 2, (kept, default)  # with the setting: mostly reused (measured: 0.32x)


def test_keep_freed_memory_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("FOPE_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False
