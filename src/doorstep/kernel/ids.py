"""Identifiers: UUIDv7 (RFC 9562), so ids sort by creation time."""

import os
import threading
import time
import uuid

_RANDOM_BITS = 74  # rand_a (12 bits) and rand_b (62 bits) read as one number
_lock = threading.Lock()
_last = (0, 0)  # (unix_ms, random part) of the latest id this process made


def new_id() -> str:
    """A new UUIDv7. Within one millisecond (or when the clock steps back) the random part counts up
    from the previous id's (RFC 9562 §6.2, method 2), so one process's ids never go out of order."""
    global _last
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big") >> (80 - _RANDOM_BITS)
    with _lock:
        last_ms, last_rand = _last
        if unix_ms <= last_ms:
            unix_ms, rand = last_ms, last_rand + 1
            if rand >> _RANDOM_BITS:  # the counter ran over: borrow the next millisecond
                unix_ms, rand = unix_ms + 1, 0
        _last = (unix_ms, rand)
    value = (unix_ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= (rand >> 62) << 64
    value |= 0b10 << 62
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    return str(uuid.UUID(int=value))
