"""Which weights a build used: a checkpoint (path and sha256) or a seed. Kept apart from
gancc.stages.weights, which imports torch, so a build served from the cache can report
them without importing it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightsInfo:
    kind: str                 # "checkpoint" or "random"
    path: str | None
    sha256: str | None
    seed: int | None
    dropped_keys: tuple[str, ...] = ()
    note: str = ""
    key: str | None = None            # the wrapping dict's entry that held the state_dict
    warnings: tuple[str, ...] = ()    # e.g. NaN/Inf weights

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, (), "")}

    @classmethod
    def from_json(cls, data: dict) -> "WeightsInfo":
        """What to_json() wrote (the build cache keeps it with an export)."""
        return cls(data["kind"], data.get("path"), data.get("sha256"), data.get("seed"),
                   tuple(data.get("dropped_keys", ())), data.get("note", ""), data.get("key"),
                   tuple(data.get("warnings", ())))
