"""Keep freed memory inside a CPU learner process (glibc's ``mallopt``).

A continuous CFCQL step allocates a few tensors of tens of MB (the counterfactual penalty's
``[2, n, M, B, H]`` activations and their gradients) and frees them again. glibc serves blocks that
large with ``mmap`` and hands them back with ``munmap`` on ``free``, so every step faults the same
pages in again from the kernel. Raising the mmap and trim thresholds keeps those blocks in the heap
for the next step: on the 2-core CPU of benchmarks/RESULTS.md a CFCQL step with policy samples at the
reference's MPE shape (batch 1 024, 30 samples per slot) took half the time; a 300-step run gave the
same final evaluation either way.

The cost: a process keeps the memory of its largest step instead of returning it between steps.
The settings only ever raise thresholds, and a user's own ``MALLOC_*`` environment variables win.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3  # glibc's malloc.h
_ENV = {M_TRIM_THRESHOLD: "MALLOC_TRIM_THRESHOLD_", M_TOP_PAD: "MALLOC_TOP_PAD_", M_MMAP_THRESHOLD: "MALLOC_MMAP_THRESHOLD_"}
THRESHOLD = 1 << 30  # blocks below 1 GiB come from the heap, and the heap is not trimmed below 1 GiB free
TOP_PAD = 512 << 20


def keep_freed_memory(threshold: int = THRESHOLD, top_pad: int = TOP_PAD) -> dict:
    """Apply the settings to this process. Returns {option name: applied?}; empty where the C library
    is not glibc (macOS, musl), where nothing is changed."""
    if not sys.platform.startswith("linux"):
        return {}
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # glibc only
    except (OSError, AttributeError):
        return {}
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = {}
    for opt, value in ((M_MMAP_THRESHOLD, threshold), (M_TRIM_THRESHOLD, threshold), (M_TOP_PAD, top_pad)):
        if _ENV[opt] in os.environ:  # the user's choice
            done[_ENV[opt]] = False
            continue
        done[_ENV[opt]] = mallopt(opt, int(value)) == 1
    return done
