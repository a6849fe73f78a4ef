"""Native heap of a stage process: keep freed memory going back to the system.

glibc serves an allocation above ``M_MMAP_THRESHOLD`` (128 KiB) with its own ``mmap``, given
back on ``free``, but it *raises* that threshold to the size of every such block freed (up to
32 MiB). After the first few freed numpy temporaries of a batch loop, every batch-sized array
(numpy allocates with ``malloc``) lands in the heap, between arrays that are kept, and the holes
cannot be returned: measured on the national history stream (98M rows, 13M states kept), the
stage held 1.39 GB at the end of the stream for about 0.73 GB of live data. A fixed threshold
(which also turns the dynamic adjustment off) gave 0.86 GB there. Fixing it also freezes the
trim threshold at 128 KiB (glibc moves it with the mmap threshold), and trimming the heap top
that often cost the stream about twice the system time (6 -> 14 s of 45 s): the trim threshold
is set to 32 MiB with it (9-13 s). Arrow's own buffers come from its memory pool (mimalloc),
not from this heap (issue 19).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

from ..config import env as setting

log = logging.getLogger(__name__)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers in glibc's malloc.h
TRIM_THRESHOLD = 32 << 20
_DONE: dict[str, int] = {}


def bound_native_heap() -> int | None:
    """Fix glibc's mmap threshold to ``TI_MALLOC_MMAP_THRESHOLD`` bytes (``0``: leave glibc's
    dynamic threshold); once per process. Returns the threshold set, None when not applied
    (not glibc, or disabled)."""
    value = int(setting("TI_MALLOC_MMAP_THRESHOLD") or 0)
    if value <= 0:
        return None
    if _DONE.get("threshold") == value:
        return value
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        ok = bool(libc is not None and hasattr(libc, "mallopt") and libc.mallopt(M_MMAP_THRESHOLD, value)
                  and libc.mallopt(M_TRIM_THRESHOLD, max(TRIM_THRESHOLD, 2 * value)))
    except OSError:
        ok = False
    if not ok:
        log.debug("mallopt not available (%s): native heap left to its defaults", name)
        return None
    _DONE["threshold"] = value
    return value
