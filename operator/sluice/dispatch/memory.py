"""Hands freed heap back to the OS after a large list: glibc keeps it otherwise, and the
operator's RSS would then show the peak of decoding a list instead of the view it holds."""
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
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
