"""glibc's malloc told to keep freed memory for reuse, in the processes that evaluate mappings.

The batched evaluator allocates and frees arrays of 10 kB to a few MB thousands of times per
layer. glibc's defaults hand the top of the heap back to the kernel whenever 128 kB of it is
free (the trim threshold, raised only by the sizes of freed mmap'd blocks) and mmap every
block above its dynamic threshold, so nearly every batch touches fresh pages: the kernel
zeroes each one on its first write. On one NVDLA-256 design with ResNet-50's 24 unique layers
that was 54k page faults and 3.7 s; with the settings below, 1.1k faults and 3.2 s (medians
of benchmarks/allocator.py), the same numbers and the same peak memory. The default
`make search ARCH=nvdla` took 97x fewer page faults and 12 % less wall time
(docs/search_time.md).

What it costs: freed memory stays with the process up to its peak use instead of going back
to the kernel in between. A search's workers reach that peak on every layer anyway.

mallopt changes only this process (and children it forks; spawned ones call this
themselves). Elsewhere than glibc (macOS, musl) it does nothing."""
from __future__ import annotations

import ctypes
import functools
import sys

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3

#: Blocks up to this size come from the heap (glibc's ceiling for the parameter on 64-bit).
MMAP_THRESHOLD = 32 << 20
#: The heap's free top goes back to the kernel only beyond this.
TRIM_THRESHOLD = 1 << 30
#: Extra bytes asked for each time the heap grows (address space; untouched pages cost nothing).
TOP_PAD = 64 << 20


@functools.cache
def keep_freed_memory() -> bool:
    """Apply the settings above once per process; True where glibc took all three."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        # the symbols the interpreter is linked with, libc's among them: no library search
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):       # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all(mallopt(p, v) == 1 for p, v in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
                                              (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
                                              (_M_TOP_PAD, TOP_PAD)))
