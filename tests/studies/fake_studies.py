"""Small fake studies for the runner and report tests (not a test module).

Tests register them in ``etude.studies.registry.STUDIES`` as ``"fake_studies:<Class>"`` after
putting this folder on ``sys.path``. Every ``run`` call is appended to ``CALLS`` as
``(study name, preset, seed, resume)`` so tests can count what actually ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from etude.errors import BadInputError, CheckpointError
from etude.studies.protocol import Claim, Result, Study

CALLS: list[tuple[str, object, int, bool]] = []
THREADS: list[int] = []
"""torch's thread count seen inside each GoodStudy-like `run`."""

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
"""A PNG signature followed by padding: enough for a file that must exist and look like a PNG."""


@dataclass(frozen=True)
class FakePreset:
    """Sizes of a fake study: one field of each overridable type."""

    steps: int = 10
    lr: float = 0.5
    flag: bool = False
    label: str = "quick"


_PRESETS = {
    "smoke": FakePreset(steps=2, label="smoke"),
    "quick": FakePreset(),
    "full": FakePreset(steps=100, label="full"),
}


class _Base(Study):
    title = "A fake study"
    citation = "Nobody. Tests. 2024"
    presets = _PRESETS

    def claims(self) -> list[Claim]:
        return [Claim("fake_claim", "The fake study works.", "1.0 (Table 0)", "measured >= 1")]


class GoodStudy(_Base):
    """Writes a PNG artifact and decides its one claim ('holds')."""

    name = "fake_good"

    def run(self, preset: FakePreset, seed: int, out_dir: Path, resume: bool = False) -> Result:
        CALLS.append((self.name, preset, seed, resume))
        THREADS.append(torch.get_num_threads())
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "plot.png").write_bytes(PNG_BYTES)
        claims = self.claims()
        claims[0].decide(f"{preset.steps} steps", holds=True, note="a fake note")
        return Result(self.name, "", seed, claims=claims, metrics={"steps": preset.steps},
                      artifacts=["plot.png"])


class OneThreadStudy(GoodStudy):
    """GoodStudy that asks the runner for one torch thread."""

    name = "fake_one_thread"
    threads = 1


class CrashStudy(_Base):
    """Raises RuntimeError from `run`, like a study with a bug; asks for one torch thread."""

    name = "fake_crash"
    threads = 1

    def run(self, preset: FakePreset, seed: int, out_dir: Path, resume: bool = False) -> Result:
        CALLS.append((self.name, preset, seed, resume))
        raise RuntimeError("boom from the fake study")


class CheckpointStudy(_Base):
    """Raises CheckpointError from `run`, like a corrupt checkpoint on --resume; asks for one thread."""

    name = "fake_checkpoint"
    threads = 1

    def run(self, preset: FakePreset, seed: int, out_dir: Path, resume: bool = False) -> Result:
        CALLS.append((self.name, preset, seed, resume))
        raise CheckpointError(f"checkpoint {Path(out_dir) / 'x.pt'} is corrupt")


class BadInputStudy(_Base):
    """Raises BadInputError from `run`, like a bad override found late."""

    name = "fake_bad_input"

    def run(self, preset: FakePreset, seed: int, out_dir: Path, resume: bool = False) -> Result:
        CALLS.append((self.name, preset, seed, resume))
        raise BadInputError("steps must be positive, got 0")


REGISTRY = {
    "fake_good": "fake_studies:GoodStudy",
    "fake_one_thread": "fake_studies:OneThreadStudy",
    "fake_crash": "fake_studies:CrashStudy",
    "fake_checkpoint": "fake_studies:CheckpointStudy",
    "fake_bad_input": "fake_studies:BadInputStudy",
}
"""Name -> 'module:Class', in the registry's format."""


class DyingStudy(_Base):
    """Ends its process at once with exit code 3, like a worker killed by the OOM killer.

    Only for runs in worker processes (``jobs > 1``): in-process it would end the test run.
    """

    name = "fake_dying"
    threads = 1

    def run(self, preset: FakePreset, seed: int, out_dir: Path, resume: bool = False) -> Result:
        import os

        os._exit(3)


class SeedStudy(GoodStudy):
    """GoodStudy whose metric depends on the seed and on torch's global generator."""

    name = "fake_seed"

    def run(self, preset: FakePreset, seed: int, out_dir: Path, resume: bool = False) -> Result:
        result = super().run(preset, seed, out_dir, resume)
        result.metrics["draw"] = float(torch.rand(()).item())
        return result


REGISTRY.update({"fake_dying": "fake_studies:DyingStudy", "fake_seed": "fake_studies:SeedStudy"})
