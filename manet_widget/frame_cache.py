"""Encoded frames kept in the kernel, so playing back or reopening a view does not re-encode."""

from __future__ import annotations

import threading
from collections import OrderedDict

from manet_widget.protocol.wire import ArrayHeader


class JpegCache:
    """LRU of encoded frames bounded in bytes (re-encoding costs more than a cache hit)."""

    def __init__(self, budget_bytes: int) -> None:
        self._budget = budget_bytes
        self._items: OrderedDict[int, tuple[ArrayHeader, bytes]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, index: int) -> tuple[ArrayHeader, bytes] | None:
        with self._lock:
            item = self._items.get(index)
            if item is not None:
                self._items.move_to_end(index)
            return item

    def put(self, index: int, item: tuple[ArrayHeader, bytes]) -> None:
        with self._lock:
            if index in self._items:
                return
            self._items[index] = item
            self._bytes += len(item[1])
            while self._bytes > self._budget and len(self._items) > 1:
                _, (_, data) = self._items.popitem(last=False)
                self._bytes -= len(data)
