"""The one way options and results turn into JSON and back: ``to_dict`` / ``from_dict`` of frozen dataclasses."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

C = TypeVar("C", bound="Config")


class Config:
    """Mixin for a (frozen) dataclass of options: JSON-able with :meth:`to_dict`, rebuilt by :meth:`from_dict`.

    ``from_dict`` ignores keys that are not fields (a newer file read by older code) and turns lists back into
    tuples (JSON has no tuples), so ``C.from_dict(json.loads(json.dumps(c.to_dict()))) == c``.
    """

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})
