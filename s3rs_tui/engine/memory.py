"""Resident memory of this process, for progress lines and the memory limit (Linux /proc, no deps)."""

import os
import resource

_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 1024**2


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE_MB
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """ru_maxrss is in KB on Linux."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
