"""Packaging: the core installs without the domain extras, the extras name what they need,
and the license and citation files are there for a researcher to reuse and cite etude."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OPTIONAL = ("music21", "mido", "pyro", "tensorboard", "selenium", "hypothesis", "pretty_midi",
            "symusic", "note_seq", "librosa", "numba")
"""Modules only an extra installs: the core must import and run without any of them."""

_BLOCKER = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: not a core dependency)", name=name)
        return None
sys.meta_path.insert(0, Block())
import torch
from etude.similarity import linear_cka, pwcca
from etude.vi import RQMC, MeanFieldGaussian, elbo, make_model
from etude.games import exact_values, ipd, policy_logits
g = torch.Generator().manual_seed(0)
x = torch.randn(200, 6, generator=g, dtype=torch.float64)
assert abs(float(linear_cka(x, x)) - 1.0) < 1e-9
assert abs(float(pwcca(x, x @ torch.randn(6, 6, generator=g, dtype=torch.float64))) - 1.0) < 1e-6
model = make_model("linear")
assert torch.isfinite(elbo(model, MeanFieldGaussian(model.dim), RQMC(model.dim, seed=0), 16).detach())
v = exact_values(ipd(0.96), policy_logits("tft"), policy_logits("defect"))
assert abs(float(v[0]) + 2.04) < 1e-3, v
print("core ok")
"""


def _core_names() -> set[str]:
    return {re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0].lower() for dep in PYPROJECT["project"]["dependencies"]}


def test_core_dependencies_hold_no_domain_extra() -> None:
    core = _core_names()
    assert {"torch", "numpy", "scipy"} <= core
    assert not core & {"music21", "mido", "pyro-ppl", "tensorboard", "selenium", "pytest"}
    assert "torch==2.13.0" in PYPROJECT["project"]["dependencies"]


def test_extras_cover_every_domain_and_all_includes_them() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"music", "audio", "pyro", "all", "test"} <= set(extras)
    assert any(dep.startswith("music21") for dep in extras["music"])
    assert any(dep.startswith("pyro-ppl") for dep in extras["pyro"])
    (everything,) = extras["all"]
    named = set(everything.removeprefix("etude[").removesuffix("]").split(","))
    # bench: benchmark-only peers; data: torchvision for --download only (its PyPI wheel needs a CUDA torch)
    assert named == set(extras) - {"all", "test", "bench", "data"}


def test_the_core_imports_and_runs_with_every_optional_module_blocked() -> None:
    done = subprocess.run([sys.executable, "-c", _BLOCKER, ",".join(OPTIONAL)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "core ok"


def test_the_blocker_does_block() -> None:
    """The check above can fail: with numpy blocked, the same script dies on the import."""
    done = subprocess.run([sys.executable, "-c", _BLOCKER, "numpy"], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode != 0 and "blocked: not a core dependency" in done.stderr


def test_license_is_mit() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text
    assert PYPROJECT["project"]["license"] == "MIT"


def test_citation_cites_etude_and_the_paper_of_every_study() -> None:
    yaml = pytest.importorskip("yaml")
    from etude.studies import get_study, study_names

    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and "etude" in cff["title"]
    cited = {ref["identifiers"][0]["value"] for ref in cff["references"]}
    for name in study_names():
        for arxiv in re.findall(r"arXiv:\d{4}\.\d{4,5}", get_study(name).citation):
            assert arxiv in cited, f"{name} cites {arxiv}, absent from CITATION.cff"
    assert len(cited) == 9  # seven papers, plus SVCCA and CKA beside PWCCA


def test_gpu_check_refuses_clearly_without_cuda() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available: the refusal path cannot be seen here")
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env={**__import__("os").environ, "PYTHON": sys.executable})
    assert done.returncode == 2
    assert done.stderr.strip().startswith("gpu_check: CUDA is not available") and len(done.stderr.splitlines()) == 1


def test_require_names_the_extra_of_a_missing_package() -> None:
    from etude.errors import MissingDependencyError
    from etude.runtime import require

    assert require("json", "music").dumps([1]) == "[1]"
    with pytest.raises(MissingDependencyError, match=r"pip install 'etude\[music\]'"):
        require("etude_no_such_package.sub", "music")


def test_music_without_its_extra_says_what_to_install(tmp_path) -> None:
    midi = tmp_path / "empty.mid"  # a valid MIDI file: one track holding only its end
    midi.write_bytes(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60MTrk\x00\x00\x00\x04\x00\xff\x2f\x00")
    script = _BLOCKER.split("import torch")[0] + (
        "from etude.errors import MissingDependencyError\n"
        "from etude.music import read_midi\n"
        "try:\n    read_midi(sys.argv[2])\nexcept MissingDependencyError as exc:\n    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", script, "symusic,numba", str(midi)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert "pip install 'etude[music]'" in done.stdout, done.stderr[-1500:]
