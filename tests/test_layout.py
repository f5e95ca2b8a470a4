"""The test tree's layout: ``tests/<package>/test_<module>.py``, every folder a package (unique module names)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ALIASES = {"exchangeable": ("bruno",), "music": ("tae",)}
"""Study names a folder's files once carried as a prefix."""


def test_every_test_folder_is_a_package_and_no_file_repeats_its_folder():
    folders = [d for d in TESTS.iterdir() if d.is_dir() and not d.name.startswith((".", "__"))]
    assert folders, "no test folders found"
    for folder in folders:
        assert (folder / "__init__.py").is_file(), f"{folder.name}/ has no __init__.py"
        prefixes = tuple(f"test_{name}_" for name in (folder.name, *ALIASES.get(folder.name, ())))
        repeated = sorted(p.name for p in folder.glob("test_*.py") if p.name.startswith(prefixes))
        assert not repeated, f"{folder.name}/: name files test_<module>.py, not {repeated}"
    assert (TESTS / "__init__.py").is_file()
