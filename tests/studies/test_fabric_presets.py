"""Which presets train through Fabric: the full preset of each study that trains with Fabric does (at its
paper precision), the CPU presets (smoke, quick, long) run plain PyTorch, and a CLI option brings Fabric back."""

from __future__ import annotations

import pytest

from etude.runtime import Distributed
from etude.studies import get_study, study_names
from etude.studies.runner import _distributed_for

FULL_PRECISION = {"amae": "bf16-mixed", "bruno": "32-true", "metavae": "bf16-mixed", "pwcca": "32-true",
                  "transformer_ae": "bf16-mixed"}


def test_the_fabric_studies_are_the_ones_listed_here():
    assert {n for n in study_names() if get_study(n).trains_with_fabric} == set(FULL_PRECISION)


@pytest.mark.parametrize("name", sorted(FULL_PRECISION))
def test_the_full_preset_trains_through_fabric_and_the_cpu_presets_do_not(name):
    study = get_study(name)
    assert study.trains_with_fabric
    full = Distributed(accelerator="auto", precision=FULL_PRECISION[name])
    assert _distributed_for(study, study.preset("full"), {}) == full
    for preset in ("smoke", "quick", "long"):
        assert _distributed_for(study, study.preset(preset), {}) is None  # plain PyTorch on the CPU
    assert _distributed_for(study, study.preset("smoke"), {"precision": "bf16-mixed"}) == Distributed(
        accelerator="cpu", precision="bf16-mixed")
