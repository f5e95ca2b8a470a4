"""The study protocol, registry, runner and report writer."""

from etude.studies.protocol import (
    PRESETS,
    SCHEMA_VERSION,
    VERDICTS,
    Claim,
    Result,
    Study,
    apply_overrides,
    preview_names,
    versions,
)
from etude.studies.registry import STUDIES, get_study, study_names
from etude.studies.report import collect_results, write_report
from etude.studies.runner import load_result, run_studies

__all__ = [
    "PRESETS",
    "SCHEMA_VERSION",
    "STUDIES",
    "VERDICTS",
    "Claim",
    "Result",
    "Study",
    "apply_overrides",
    "preview_names",
    "collect_results",
    "get_study",
    "load_result",
    "run_studies",
    "study_names",
    "versions",
    "write_report",
]
