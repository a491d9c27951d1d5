"""After a large list: hands freed heap back to the OS and takes what stays out of the collector's scans.

glibc keeps freed heap otherwise, and the operator's RSS would then show the peak of decoding a
list instead of the view it holds. What survives a list (the view's records, modules, kopf) lives
as long as the operator: `gc.freeze()` moves it to the collector's permanent generation, so a
full collection during dispatch scans only what came after it (measured under bench/dispatch.py:
full collections 0.22 s -> 0.05 s of operator CPU over 300 executions; with 50,000 finished
executions in the view each full collection would otherwise walk all of them). Objects frozen
here are still freed by reference counting when the view drops them; only a cycle among them
would outlive its use, and the view's records hold none. Called after the first lists, after
the history backfill and after a full re-list, never periodically.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc


def _load_libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _load_libc()


def release_memory() -> None:
    gc.collect()
    gc.freeze()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
