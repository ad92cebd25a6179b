"""The annotated objects as the widget lists them: id, display name and colour.

Object ids are the session's user ids (1..255); 0 is background and is never listed. Colours
come from a fixed palette indexed by id, so a mask keeps its colours across views and reloads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from manet.errors import UnknownObjectError
from manet.inference.scribbles import MAX_OBJECT_ID

# Distinct, saturated colours that stay readable over video in light and dark themes.
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
    "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000", "#aaffc3", "#808000",
)
BACKGROUND_COLOR = "#9e9e9e"


def color_for(object_id: int) -> str:
    """The palette colour of an object id (ids past the palette wrap around)."""
    return BACKGROUND_COLOR if object_id == 0 else PALETTE[(object_id - 1) % len(PALETTE)]


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object. Invariant: ``1 <= id <= 255`` and ``name`` is non-empty."""

    id: int
    name: str
    color: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "color": self.color}


class ObjectList:
    """Ordered objects with unique ids; the single writer of the widget's ``objects`` trait."""

    def __init__(self, ids: Iterable[int] = ()) -> None:
        self._items: list[ObjectInfo] = []
        for object_id in ids:
            self.ensure(object_id)
        if not self._items:
            self.add()

    @property
    def ids(self) -> list[int]:
        return [item.id for item in self._items]

    def to_json(self) -> list[dict[str, Any]]:
        return [item.to_json() for item in self._items]

    def add(self, name: str | None = None) -> ObjectInfo:
        """Append an object with the smallest unused id; ``name`` defaults to ``object <id>``."""
        used = set(self.ids)
        free = next((i for i in range(1, MAX_OBJECT_ID + 1) if i not in used), None)
        if free is None:
            raise ValueError(f"all {MAX_OBJECT_ID} object ids are in use: delete an object first")
        item = ObjectInfo(free, (name or f"object {free}").strip(), color_for(free))
        self._items.append(item)
        return item

    def ensure(self, object_id: int) -> bool:
        """List ``object_id`` if it is missing (ids introduced by scripted rounds); True if added."""
        if object_id == 0 or object_id in self.ids:
            return False
        if not 1 <= object_id <= MAX_OBJECT_ID:
            raise ValueError(f"object ids are 1..{MAX_OBJECT_ID}, got {object_id}")
        self._items.append(ObjectInfo(object_id, f"object {object_id}", color_for(object_id)))
        self._items.sort(key=lambda item: item.id)
        return True

    def rename(self, object_id: int, name: str) -> None:
        name = name.strip()
        if not name:
            raise ValueError("an object name cannot be empty")
        index = self._index(object_id)
        old = self._items[index]
        self._items[index] = ObjectInfo(old.id, name[:80], old.color)

    def delete(self, object_id: int) -> None:
        del self._items[self._index(object_id)]

    def _index(self, object_id: int) -> int:
        for index, item in enumerate(self._items):
            if item.id == object_id:
                return index
        raise UnknownObjectError(f"object {object_id} is not in the list; listed ids: {self.ids}")
