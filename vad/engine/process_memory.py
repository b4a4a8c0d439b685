"""This process's memory as the OS sees it, and giving the C heap's free pages back: what a long live session needs
to stay flat (``python -m bench.live`` measures it)."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools


def memory_mb() -> tuple[float, float]:
    """Resident set size of this process and its anonymous part (heap, stacks) in MB. The rest is mapped files:
    library code paged in on first use (the first snippet runs kernels never run before), shared, and dropped by
    the kernel when memory is short. Linux /proc; elsewhere the peak RSS, and NaN for the anonymous part."""
    found: dict[str, float] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "RssAnon"):
                    found[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    if "VmRSS" not in found:
        import resource

        found["VmRSS"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return found["VmRSS"], found.get("RssAnon", float("nan"))


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def trim_heap() -> bool:
    """Hand the C heap's free pages back to the OS (glibc's ``malloc_trim``): the reader, recorder and torch threads
    free blocks between live ones, which glibc otherwise keeps resident, so RSS creeps up over a long stream
    (``python -m bench.live`` measures it). A few ms; False where the C library has no ``malloc_trim``."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True
