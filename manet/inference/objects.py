"""The objects a session segments: id, display name and colour.

Object ids are the user ids of masks and scribbles (1..255); 0 is background and is never
listed. Colours default to a fixed palette indexed by id, so a mask keeps its colours across
views, saves and reloads. :class:`ObjectRegistry` is immutable: every change returns a new
registry, so a session can keep the one of an earlier step for undo without copying.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from manet.errors import UnknownObjectError
from manet.inference.scribbles import MAX_OBJECT_ID

# Distinct, saturated colours that stay readable over video in light and dark themes.
PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
    "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000", "#aaffc3", "#808000",
)
BACKGROUND_COLOR = "#9e9e9e"
MAX_NAME_LENGTH = 80
_COLOR = re.compile(r"^#[0-9a-f]{6}$")


def color_for(object_id: int) -> str:
    """The palette colour of an object id (ids past the palette wrap around; 0 is background)."""
    return BACKGROUND_COLOR if object_id == 0 else PALETTE[(object_id - 1) % len(PALETTE)]


def default_name(object_id: int) -> str:
    return f"object {object_id}"


def check_object_id(object_id: object) -> int:
    """``object_id`` as an int in 1..255, or ValueError saying what is valid."""
    if isinstance(object_id, bool) or not isinstance(object_id, int) or not 1 <= object_id <= MAX_OBJECT_ID:
        raise ValueError(f"object ids are ints in 1..{MAX_OBJECT_ID} (0 is background), got {object_id!r}")
    return object_id


def check_name(name: object) -> str:
    """A display name stripped of surrounding blanks and cut to 80 characters; ValueError if empty."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"an object name must be a non-empty string, got {name!r}")
    return name.strip()[:MAX_NAME_LENGTH]


def check_color(color: object) -> str:
    """A ``#rrggbb`` colour (lower case), or ValueError saying what is valid."""
    normalised = color.strip().lower() if isinstance(color, str) else None
    if normalised is None or not _COLOR.match(normalised):
        raise ValueError(f"an object colour is a '#rrggbb' hex string such as '#e6194b', got {color!r}")
    return normalised


@dataclass(frozen=True)
class ObjectInfo:
    """One object. Invariant: ``1 <= id <= 255``, ``name`` is non-empty, ``color`` is ``#rrggbb``."""

    id: int
    name: str
    color: str

    def __post_init__(self) -> None:
        check_object_id(self.id)
        if check_name(self.name) != self.name:
            raise ValueError(f"object name {self.name!r} has surrounding blanks or is over {MAX_NAME_LENGTH} "
                             "characters; pass it through check_name()")
        if check_color(self.color) != self.color:
            raise ValueError(f"object colour {self.color!r} must be lower-case '#rrggbb'")

    @classmethod
    def default(cls, object_id: int) -> ObjectInfo:
        """The object a scribble or mask introduces: ``object <id>`` in its palette colour."""
        return cls(check_object_id(object_id), default_name(object_id), color_for(object_id))

    def to_json(self) -> dict[str, int | str]:
        return {"id": self.id, "name": self.name, "color": self.color}


@dataclass(frozen=True)
class ObjectRegistry:
    """The session's objects, sorted by id. Invariant: ids are distinct and ascending."""

    items: tuple[ObjectInfo, ...] = ()

    def __post_init__(self) -> None:
        ids = self.ids
        if list(ids) != sorted(set(ids)):
            raise ValueError(f"object ids must be distinct and ascending, got {list(ids)}")

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(item.id for item in self.items)

    def get(self, object_id: int) -> ObjectInfo:
        for item in self.items:
            if item.id == object_id:
                return item
        raise UnknownObjectError(f"object {object_id} is not one of the session's objects; known ids: {list(self.ids)}")

    def free_id(self) -> int:
        used = set(self.ids)
        free = next((i for i in range(1, MAX_OBJECT_ID + 1) if i not in used), None)
        if free is None:
            raise ValueError(f"all {MAX_OBJECT_ID} object ids are in use: delete an object first")
        return free

    def with_object(self, item: ObjectInfo) -> ObjectRegistry:
        """This registry plus ``item`` (ValueError when its id is taken)."""
        if item.id in self.ids:
            raise ValueError(f"object {item.id} exists already ({self.get(item.id).name!r}); pick another id "
                             "or leave object_id out for the smallest free one")
        return ObjectRegistry(tuple(sorted((*self.items, item), key=lambda entry: entry.id)))

    def ensure(self, object_ids: Iterable[int]) -> ObjectRegistry:
        """This registry plus default entries for the ids (> 0) it does not list yet."""
        result = self
        for object_id in object_ids:
            if object_id != 0 and object_id not in result.ids:
                result = result.with_object(ObjectInfo.default(object_id))
        return result

    def replaced(self, item: ObjectInfo) -> ObjectRegistry:
        """This registry with the entry of ``item.id`` replaced (UnknownObjectError if none)."""
        self.get(item.id)
        return ObjectRegistry(tuple(item if entry.id == item.id else entry for entry in self.items))

    def without(self, object_id: int) -> ObjectRegistry:
        self.get(object_id)
        return ObjectRegistry(tuple(entry for entry in self.items if entry.id != object_id))
