"""The Android app's pure-Kotlin core (android_app/app/core) on the JVM, against the Python toolkit.

``kotlin_vectors.write_all`` writes what mobile_mllm computes (tiles through Pillow, ids through
Hugging Face tokenizers, prompt layouts, schema errors, stats records; the smolvlm policy, Lanczos,
and SmolVLM's prompts and plans over a tiny random SmolVLM's own files); the core and its JUnit
tests are compiled with Debian's ``kotlinc`` (cached by a hash of the sources) and run with
JUnit 4, which compares the Kotlin port with those vectors and with shared/testdata/grid_cases.json.
No Android SDK is involved: this is the part of the app that can be checked here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mobile_mllm import contract
from mobile_mllm.device.app import read_result
from mobile_mllm.errors import RunnerError

from kotlin_vectors import write_all

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "android_app" / "app" / "core"
# ../shared/testdata/grid_cases.json when the shared folder is there, else the committed copy
GRID_CASES = next(p for p in (REPO.parent / "shared" / "testdata" / "grid_cases.json", REPO / "tests" / "assets" / "grid_cases.json")
                  if p.is_file())
JARS = Path("/usr/share/java")


def _sources() -> list[Path]:
    return sorted((CORE / "src").rglob("*.kt"))


def test_contract_copies_match_contract_py() -> None:
    text = (CORE / "src/main/kotlin/org/mobilemllm/core/Contract.kt").read_text()
    consts = re.findall(r'const val (\w+) = ("(?:[^"\\]|\\.)*"|\d+)', text)
    assert len(consts) >= 20
    for name, value in consts:
        expected = getattr(contract, name)
        got = int(value) if value.isdigit() else value[1:-1]
        assert got == expected, f"Contract.kt {name} = {got!r}, contract.py says {expected!r}"


def test_contract_copy_check_fails_on_a_wrong_value(tmp_path: Path) -> None:
    # the check above reads the file; a changed value must be seen (guards the regex, not the app)
    text = (CORE / "src/main/kotlin/org/mobilemllm/core/Contract.kt").read_text()
    wrong = text.replace('TEXT_DECODER = "text_decoder"', 'TEXT_DECODER = "decoder"')
    assert wrong != text
    consts = dict(re.findall(r'const val (\w+) = "([^"]*)"', wrong))
    assert consts["TEXT_DECODER"] != contract.TEXT_DECODER


def _compiled(cache: Path) -> Path:
    """Compile core + tests once per source hash; the jar's path."""
    digest = hashlib.sha256()
    for src in _sources():
        digest.update(str(src.relative_to(CORE)).encode() + b"\0" + src.read_bytes())
    jar = cache / f"core-tests-{digest.hexdigest()[:16]}.jar"
    if jar.is_file():
        return jar
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob("core-tests-*.jar"):  # other sources' builds are never used again
        old.unlink()
    tmp = jar.with_suffix(".partial.jar")
    proc = subprocess.run(
        ["kotlinc", "-nowarn", "-cp", str(JARS / "junit4.jar"), str(CORE / "src/main/kotlin"), str(CORE / "src/test/kotlin"),
         "-d", str(tmp)], capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, f"kotlinc failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    tmp.replace(jar)
    return jar


@pytest.mark.slow
def test_kotlin_core_matches_python_on_the_jvm(tmp_path: Path) -> None:
    missing = [t for t in ("kotlinc", "java") if shutil.which(t) is None] + \
        [j for j in ("junit4.jar", "hamcrest-core.jar") if not (JARS / j).is_file()]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (.ci/run installs Debian's kotlin and junit4)")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mobile_mllm" / "kotlin_core"
    jar = _compiled(cache)
    vectors = tmp_path / "vectors"
    write_all(vectors)
    stdlib = next(p for p in (JARS / "kotlin-stdlib.jar", Path("/usr/share/kotlin/kotlinc/lib/kotlin-stdlib.jar")) if p.is_file())
    classpath = os.pathsep.join(str(p) for p in (jar, JARS / "junit4.jar", JARS / "hamcrest-core.jar", stdlib))
    proc = subprocess.run(
        ["java", "-cp", classpath, f"-Dmobile_mllm.vectors={vectors}", f"-Dmobile_mllm.grid_cases={GRID_CASES}",
         "org.junit.runner.JUnitCore", "org.mobilemllm.core.VectorsTest", "org.mobilemllm.core.SessionTest"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    ran = re.search(r"OK \((\d+) tests\)", proc.stdout)
    assert ran and int(ran.group(1)) >= 21, proc.stdout[-2000:]

    # what BenchmarkActivity writes is what `profile --via app` reads
    records = read_result((vectors / "from_kotlin" / "ok.json").read_text(), "jvm")
    expected = json.loads((vectors / "stats.json").read_text())
    assert [(r["run"], r["text"], r["stop_reason"]) for r in records] == [(i, s["text"], s["stop_reason"]) for i, s in enumerate(expected)]
    assert [(r["num_prompt_tokens"], r["prompt_tokens"], r["total_ms"]) for r in records] == [(10 + i, 10 + i, 100.0) for i in range(len(records))]
    with pytest.raises(RunnerError, match=r"exit code 3 \(the image cannot be loaded\): ImageError: .*photo.heic"):
        read_result((vectors / "from_kotlin" / "image_error.json").read_text(), "jvm")
