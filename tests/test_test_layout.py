"""The test tree itself: every test module's file name is unique.

pytest's default import mode puts each test folder on ``sys.path`` and imports the module by its
bare name, so two ``test_app.py`` files in different folders make collection of the whole suite
fail ("import file mismatch") while each folder alone still passes -- a clash that only the full
run (CI) finds. This test finds it in any run.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_module_names_are_unique() -> None:
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if path.name not in ("__init__.py", "conftest.py"):
            by_name[path.name].append(str(path.relative_to(TESTS)))
    clashes = {name: sorted(paths) for name, paths in by_name.items() if len(paths) > 1}
    assert clashes == {}, f"rename one of each: {clashes}"
