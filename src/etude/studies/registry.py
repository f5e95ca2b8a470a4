"""The registry of studies: name -> the class that runs it, imported only when asked for."""

from __future__ import annotations

import importlib

from etude.errors import BadInputError
from etude.studies.protocol import Study

__all__ = ["STUDIES", "get_study", "load_study", "study_names"]

STUDIES: dict[str, str] = {
    "amae": "etude.audio.study:AmaeStudy",
    "qmcvi": "etude.vi.study:QmcviStudy",
    "lola": "etude.games.study:LolaStudy",
    "pwcca": "etude.similarity.study:PwccaStudy",
    "bruno": "etude.exchangeable.study:BrunoStudy",
    "metavae": "etude.meta.study:MetaVaeStudy",
    "transformer_ae": "etude.music.study:TransformerAeStudy",
}
"""Study name -> 'module:Class', in the order of the papers in DESIGN.md; a new study adds one line."""


def study_names() -> list[str]:
    """Names of every registered study, in registry order."""
    return list(STUDIES)


def get_study(name: str) -> Study:
    """An instance of the named study; an unknown name raises BadInputError listing the known ones."""
    if name not in STUDIES:
        raise BadInputError(f"unknown study {name!r}; expected one of {study_names()}")
    return load_study(STUDIES[name])


def load_study(spec: str) -> Study:
    """An instance of the study class named by a registry entry, ``'module:Class'``."""
    module_name, _, class_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()
