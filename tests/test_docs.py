"""The docs tell the truth: generated pages match the code, links resolve, figures stay home.

- ``docs/scenarios.md`` holds, between its markers, exactly what
  :func:`orgtwin.scenario.reference.scenario_reference` generates from the scenario specs;
- ``docs/telemetry.md`` is exactly what :func:`orgtwin.runs.reference.telemetry_reference`
  generates from the telemetry schemas, the series registry and the KPIs;
- every relative link in ``README.md`` and ``docs/*.md`` points to a file that exists
  (and, with a ``#fragment``, to a heading of that file), and every repository path they
  name in code (``orgtwin/world/build.py``) exists;
- performance figures live only in ``benchmarks/README.md``;
- the README stays short, lists every shipped scenario, and its Python example runs;
- the research guide's ``python`` blocks run, in order, as one script.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from orgtwin.runs.reference import telemetry_reference
from orgtwin.scenario.reference import scenario_reference

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
BENCHMARKS = ROOT / "benchmarks" / "README.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_MAX_LINES = 220
START = "<!-- scenario-reference:start -->"
END = "<!-- scenario-reference:end -->"
EXAMPLE = re.compile(r"^<!-- example:python -->\n```python\n(.*?)^```$", re.M | re.S)
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)
RESEARCH = DOCS / "research.md"
FENCE = re.compile(r"^```.*?^```$", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.M)
NAMED_PATH = re.compile(
    r"`((?:\.ci|\.streamlit|agents|benchmarks|docs|orgtwin|scenarios|tests)/[^`\s<>*]*)`"
)
"""A repository path in a code span: ``orgtwin/world/build.py`` (placeholders left out)."""
FIGURE = re.compile(r"≈\s*(\d[\d,.]*\s*(?:s|ms|MiB))\b")
"""A measured figure in the benchmarks' tables: ``≈ 1.87 s``, ``≈ 705 MiB``."""


def page_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def python_blocks(text: str) -> list[tuple[int, str]]:
    """Every ```python block of a page, in order, with the line its code starts on."""
    return [
        (text.count("\n", 0, match.start(1)) + 1, match.group(1))
        for match in PYTHON_BLOCK.finditer(text)
    ]


RUN_BLOCKS = """
import json, sys
namespace = {"__name__": "__main__"}
page, blocks = json.load(sys.stdin)
for line, code in blocks:
    exec(compile("\\n" * (line - 1) + code, page, "exec"), namespace)
"""
"""Runs blocks read as JSON from stdin in one namespace; a traceback names the page's line."""


def run_blocks(
    page: str, blocks: list[tuple[int, str]], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a page's code blocks in order, as one script, in a fresh interpreter in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-c", RUN_BLOCKS],
        input=json.dumps([page, blocks]),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def prose(text: str) -> str:
    """Markdown without code blocks and code spans, where links are written."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def relative_links(text: str) -> list[str]:
    """Targets of the Markdown links in ``text`` that point inside the repository."""
    return [
        target
        for target in LINK.findall(prose(text))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:…
    ]


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: ``## `extends` and merging`` → ``extends-and-merging``."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {anchor(heading) for heading in HEADING.findall(text)}


def broken_links(path: Path) -> list[str]:
    """The relative links of one Markdown file whose file or heading does not exist."""
    broken = []
    for target in relative_links(path.read_text(encoding="utf-8")):
        file_part, _, fragment = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists() or (
            fragment and linked.suffix == ".md" and fragment not in anchors(linked)
        ):
            broken.append(target)
    return broken


def named_paths(text: str) -> list[str]:
    """The repository paths a page names in code spans outside code blocks."""
    return NAMED_PATH.findall(FENCE.sub("", text))


def benchmark_keys() -> set[str]:
    """The result keys of the benchmarks: the backticked names in their tables' first column."""
    keys: set[str] = set()
    for line in BENCHMARKS.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            keys |= {key for key in re.findall(r"`([^`]+)`", first) if "_" in key}
    return keys


def benchmark_figures() -> set[str]:
    """The measured figures of the benchmarks' tables (``1.87 s``, ``705 MiB``…): the
    ``≈`` figures of each row's last cell, the "measured" column."""
    figures: set[str] = set()
    for line in BENCHMARKS.read_text(encoding="utf-8").splitlines():
        if line.startswith("|"):
            measured = line.rstrip().rstrip("|").rsplit("|", 1)[-1]
            figures |= {re.sub(r"\s+", " ", f) for f in FIGURE.findall(measured)}
    return figures


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- generated pages


def test_scenario_reference_matches_the_specs() -> None:
    page = (DOCS / "scenarios.md").read_text(encoding="utf-8")
    assert page.count(START) == 1 and page.count(END) == 1, (
        f"docs/scenarios.md must hold {START} and {END} once each"
    )
    pasted = page.split(START, 1)[1].split(END, 1)[0].strip("\n")
    assert pasted == scenario_reference(), (
        "docs/scenarios.md is out of date with the scenario specs: run `make docs`"
    )


def test_telemetry_reference_matches_the_registries() -> None:
    page = (DOCS / "telemetry.md").read_text(encoding="utf-8")
    assert page == telemetry_reference() + "\n", (
        "docs/telemetry.md is out of date with the telemetry schemas, series metrics or "
        "KPIs: run `make docs`"
    )


# --------------------------------------------------------------------------- links


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_every_relative_link_points_to_an_existing_file(path: Path) -> None:
    broken = broken_links(path)
    assert not broken, f"{page_id(path)} links to files or headings that do not exist: {broken}"


def test_the_link_check_finds_links_and_catches_broken_ones(tmp_path: Path) -> None:
    assert "docs/model.md" in relative_links(README.read_text(encoding="utf-8"))
    (tmp_path / "there.md").write_text("# A `code` heading\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-code-heading) [web](https://example.com) "
        "[gone](missing.md) [no heading](there.md#nope) `[not a link](missing.md)`\n"
        "```\n[not a link either](missing.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page) == ["missing.md", "there.md#nope"]


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_every_path_named_in_the_docs_exists(path: Path) -> None:
    named = named_paths(path.read_text(encoding="utf-8"))
    missing = sorted({name for name in named if not (ROOT / name).exists()})
    assert not missing, f"{page_id(path)} names paths that do not exist: {missing}"


def test_the_path_check_finds_paths() -> None:
    text = "`orgtwin/world/build.py`, `tests/<stage>/test_<module>.py`\n```\n`orgtwin/x.py`\n```"
    assert named_paths(text) == ["orgtwin/world/build.py"]


# --------------------------------------------------------------------------- figures stay home


def test_the_benchmark_keys_and_figures_are_found() -> None:
    assert {"baseline_year_s", "explore_rerun_s", "efficiency_20ms"} <= benchmark_keys()
    assert {"1.87 s", "705 MiB", "2.55 s"} <= benchmark_figures()


@pytest.mark.parametrize("path", PAGES, ids=page_id)
def test_no_performance_figure_outside_the_benchmarks_readme(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    keys = sorted(key for key in benchmark_keys() if re.search(rf"\b{re.escape(key)}\b", text))
    figures = sorted(
        f for f in benchmark_figures() if re.search(rf"(?<![\d.]){re.escape(f)}\b", text)
    )
    assert not keys and not figures, (
        f"{page_id(path)} repeats benchmark results ({', '.join(keys + figures)}); "
        "performance figures live only in benchmarks/README.md: link to it instead"
    )


# --------------------------------------------------------------------------- the README


def test_the_readme_stays_short(readme: str) -> None:
    lines = len(readme.splitlines())
    assert lines < README_MAX_LINES, (
        f"README.md must stay under {README_MAX_LINES} lines, got {lines}: move reference "
        "material to docs/"
    )


def test_quick_start_names_make_run_and_make_test(readme: str) -> None:
    quick_start = re.search(r"^## Quick start\n(.*?)(?=^## |\Z)", readme, re.M | re.S)
    assert quick_start, "README.md must have a '## Quick start' section"
    assert "make run" in quick_start.group(1) and "make test" in quick_start.group(1)


@pytest.mark.parametrize("path", sorted((ROOT / "scenarios").glob("*.yaml")), ids=lambda p: p.name)
def test_every_scenario_file_is_in_the_readme(readme: str, path: Path) -> None:
    assert f"| `{path.name}` |" in readme, f"README.md's scenarios table must list {path.name}"


@pytest.mark.slow
def test_python_example_runs(readme: str) -> None:
    blocks = EXAMPLE.findall(readme)
    assert len(blocks) == 1, "README.md must have one ```python block after <!-- example:python -->"
    done = run_blocks("README.md", [(1, blocks[0])], ROOT, timeout=300)
    assert done.returncode == 0, f"the README's Python example failed:\n{done.stderr}"
    for kpi in ("deploy_frequency_per_day", "lead_time_hours", "change_failure_rate_pct"):
        assert kpi in done.stdout, f"the example must print the comparison of {kpi}"


# --------------------------------------------------------------------------- the research guide


def test_python_blocks_are_found_in_order_with_their_lines() -> None:
    text = "# T\n```python\na = 1\n```\n```sh\nls\n```\n```python\nb = a\n```\n"
    assert python_blocks(text) == [(3, "a = 1\n"), (9, "b = a\n")]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_research_guide_runs(tmp_path: Path) -> None:
    """Its blocks run in order in one namespace, in a scratch folder that sees the
    repository's scenarios (the guide's paths are relative to the repository root)."""
    blocks = python_blocks(RESEARCH.read_text(encoding="utf-8"))
    assert len(blocks) >= 8, "docs/research.md must keep its runnable examples"
    (tmp_path / "scenarios").symlink_to(ROOT / "scenarios", target_is_directory=True)
    done = run_blocks(page_id(RESEARCH), blocks, tmp_path, timeout=240)
    assert done.returncode == 0, f"docs/research.md's examples failed:\n{done.stderr}"
    for shown in ("churned in a week", "free users", "ray", "paired interval"):
        assert shown in done.stdout, f"docs/research.md's examples must print {shown!r}"
