"""The probe of tests/test_allocator.py, in a module that imports nothing of naas_tl: a
fresh process that imports it keeps glibc's defaults until the test changes them."""
from __future__ import annotations


def page_faults_of_repeated_batches() -> int:
    """Minor page faults of allocating and freeing three arrays of 30 MB at a time, after a
    first round that reaches the process's peak. The size makes glibc's defaults fault on
    every round whatever the process did before: its dynamic thresholds stop at 32 MB
    (heap, not mmap) and 64 MB (trim), and 90 MB freed at the heap's top is trimmed."""
    import resource

    import numpy as np

    n = (30 << 20) // 8

    def work():
        for _ in range(10):
            a = np.ones(n)
            b = a * 2.0
            c = a + b
            del a, b, c
    work()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    work()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
