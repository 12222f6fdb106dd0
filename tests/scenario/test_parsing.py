"""Reading scenario files safely (orgtwin/scenario/load.py): the parser cannot be made to
hang or to blow up, and ``extends:`` cannot read outside an allowed root.

Each test stands for a hazard a hostile tester found: merge-key chains that took minutes
and gigabytes before the alias limit fired, a FIFO that hung the loader, symbolic-link
loops and NUL bytes that gave tracebacks, and ``extends:`` reading (and quoting) any file
on the machine.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from orgtwin.errors import ScenarioError
from orgtwin.scenario.load import MAX_VALUES, load_scenario

ROOT = Path(__file__).resolve().parents[2]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
SECRET = "hunter2-do-not-print"


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def org(tmp_path: Path) -> Path:
    """A scenarios folder holding a copy of the baseline."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    shutil.copy(BASELINE, folder / "baseline.yaml")
    return folder


def _merge_chain(levels: int) -> str:
    """A chain of mappings, each merging the one before: level k holds k keys."""
    lines = ["a0: &a0 {k0: 0}"]
    lines += [f"a{i}: &a{i} {{<<: *a{i - 1}, k{i}: {i}}}" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- expansion


@pytest.mark.timeout(120)
def test_a_merge_key_chain_is_refused_while_parsing(tmp_path: Path) -> None:
    text = _merge_chain(9000)  # 363 KB: took 164 s and 1.7 GB before it was refused
    assert len(text) > 300_000
    before, started = _peak_mib(), time.perf_counter()
    with pytest.raises(ScenarioError, match=f"more than {MAX_VALUES:,} values"):
        load_scenario(_write(tmp_path, "chain.yaml", text))
    assert time.perf_counter() - started < 30  # it took 164 s
    assert _peak_mib() - before < 500  # it took 1.7 GB


@pytest.mark.timeout(120)
def test_a_merge_chain_as_large_as_a_file_may_be_is_refused_without_running_out(
    tmp_path: Path,
) -> None:
    text = _merge_chain(30_000)[: 1024 * 1024 - 100]  # died with a MemoryError at 1 MiB
    text = text[: text.rindex("\n") + 1]
    with pytest.raises(ScenarioError, match="more than"):
        load_scenario(_write(tmp_path, "chain.yaml", text))


@pytest.mark.timeout(120)
def test_merging_one_large_mapping_many_times_is_refused_before_it_is_copied(
    tmp_path: Path,
) -> None:
    keys = ", ".join(f"k{i}: 0" for i in range(50_000))
    refs = ", ".join(["*big"] * 20_000)
    text = f"big: &big {{{keys}}}\ncopies: {{<<: [{refs}]}}\n"
    started = time.perf_counter()
    with pytest.raises(ScenarioError, match="more than"):
        load_scenario(_write(tmp_path, "copies.yaml", text))
    assert time.perf_counter() - started < 30  # one copy is counted, not made


def test_merge_keys_of_an_ordinary_file_still_work(org: Path) -> None:
    text = (
        "extends: baseline.yaml\nname: merged\nteams:\n"
        "  web: &small {headcount: 4, oncall_size: 2}\n"
        "  core: {<<: *small, headcount: 5}\n"
        "  data: {<<: [{oncall_size: 3}, *small]}\n"
    )
    sc = load_scenario(_write(org, "merged.yaml", text))
    assert (sc.teams["core"].headcount, sc.teams["core"].oncall_size) == (5, 2)
    as_pyyaml_reads_it = yaml.safe_load(text)["teams"]["data"]
    assert sc.teams["data"].model_dump(include={"headcount", "oncall_size"}) == as_pyyaml_reads_it


def test_numbers_with_an_exponent_are_numbers(org: Path) -> None:
    text = "extends: baseline.yaml\nsegments:\n  free: {acquisition: {base_per_day: 1e3}}\n"
    sc = load_scenario(_write(org, "exponent.yaml", text))
    assert sc.segments["free"].acquisition.base_per_day == 1000.0  # YAML 1.2 reads 1e3 so


def test_a_start_with_a_time_zone_is_the_same_instant_in_utc(org: Path) -> None:
    text = "extends: baseline.yaml\nstart: 2026-01-05T09:00:00+05:00\n"
    assert load_scenario(_write(org, "zoned.yaml", text)).start == datetime(2026, 1, 5, 4)


# --------------------------------------------------------------------------- files


@pytest.mark.timeout(20)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_waiting_for_a_writer(org: Path) -> None:
    os.mkfifo(org / "pipe.yaml")
    with pytest.raises(ScenarioError, match="must be a regular file, got a FIFO"):
        load_scenario(org / "pipe.yaml")
    child = _write(org, "child.yaml", "extends: pipe.yaml\nname: child\n")
    with pytest.raises(ScenarioError, match="must be a regular file, got a FIFO") as caught:
        load_scenario(child)
    assert caught.value.path == "extends"


def test_a_folder_is_refused(org: Path) -> None:
    (org / "folder.yaml").mkdir()
    with pytest.raises(ScenarioError, match="must be a regular file, got a folder"):
        load_scenario(org / "folder.yaml")


def test_a_loop_of_symbolic_links_is_a_scenario_error(org: Path) -> None:
    (org / "a.yaml").symlink_to("b.yaml")
    (org / "b.yaml").symlink_to("a.yaml")
    with pytest.raises(ScenarioError, match="loop of symbolic links"):
        load_scenario(org / "a.yaml")
    child = _write(org, "child.yaml", "extends: a.yaml\nname: child\n")
    with pytest.raises(ScenarioError, match="loop of symbolic links") as caught:
        load_scenario(child)
    assert caught.value.path == "extends"


def test_a_nul_byte_in_a_path_is_a_scenario_error(org: Path) -> None:
    with pytest.raises(ScenarioError, match="NUL"):
        load_scenario(str(org / "base\0.yaml"))


# --------------------------------------------------------------------------- root


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside.yaml", "../../outside.yaml"])
def test_extends_outside_the_root_is_refused_by_name_without_reading_it(
    org: Path, target: str
) -> None:
    outside = org.parent / "outside.yaml"
    outside.write_text(f"password: {SECRET}\n", encoding="utf-8")
    child = _write(org, "child.yaml", f"extends: {target}\nname: child\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(child, root=org)
    assert caught.value.path == "extends"
    assert f"must name a file inside {org}, got {target!r}" in caught.value.problem
    assert SECRET not in str(caught.value) and "root:" not in str(caught.value)


def test_a_link_inside_the_root_to_a_file_outside_is_refused(org: Path) -> None:
    secret = org.parent / "secret.yaml"
    secret.write_text(f"segments: {{{SECRET}: 1}}\n", encoding="utf-8")
    (org / "innocent.yaml").symlink_to(secret)
    child = _write(org, "child.yaml", "extends: innocent.yaml\nname: child\n")
    with pytest.raises(ScenarioError, match="must name a file inside") as caught:
        load_scenario(child, root=org)
    assert SECRET not in str(caught.value)
    with pytest.raises(ScenarioError, match="must be a file inside"):
        load_scenario(org / "innocent.yaml", root=org)


def test_a_scenario_outside_the_root_is_refused(org: Path, tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="must be a file inside"):
        load_scenario(BASELINE, root=org)
    assert load_scenario(org / "baseline.yaml", root=org).name == "baseline"


def test_extends_inside_the_root_still_works(org: Path) -> None:
    (org / "nested").mkdir()
    child = _write(org / "nested", "child.yaml", "extends: ../baseline.yaml\nname: nested\n")
    assert load_scenario(child, root=org).base == str(org / "baseline.yaml")


def test_a_parse_error_in_a_base_gives_its_line_and_column_but_never_its_text(org: Path) -> None:
    _write(org, "notes.yaml", f'password: "{SECRET}\nkey: [\n')
    child = _write(org, "child.yaml", "extends: notes.yaml\nname: child\n")
    with pytest.raises(ScenarioError, match=r"is not valid YAML \(line \d+, column \d+\)") as e:
        load_scenario(child, root=org)
    assert SECRET not in str(e.value) and "password" not in str(e.value)


def test_a_base_with_object_tags_or_duplicate_keys_is_not_quoted(org: Path) -> None:
    _write(org, "tagged.yaml", f"{SECRET}: !!python/name:os.system\n")
    _write(org, "twice.yaml", f"{SECRET}: 1\n{SECRET}: 2\n")
    for base in ("tagged.yaml", "twice.yaml"):
        child = _write(org, "child.yaml", f"extends: {base}\nname: child\n")
        with pytest.raises(ScenarioError, match="is not valid YAML") as caught:
            load_scenario(child)
        assert SECRET not in str(caught.value)


def test_the_dashboard_and_explore_read_scenarios_inside_their_folder(
    org: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orgtwin.explore import run_base, run_change

    child = _write(org, "child.yaml", "extends: /etc/passwd\nname: child\n")
    for call in (
        lambda: run_base(str(child), days=1, seeds=1, root=org),
        lambda: run_change(str(child), (), days=1, seeds=1, root=org),
    ):
        with pytest.raises(ScenarioError, match="must name a file inside"):
            call()
    for module in ("state.py", "telemetry_state.py"):  # every load is rooted in the folder
        text = (ROOT / "orgtwin" / "dashboard" / module).read_text(encoding="utf-8")
        calls = re.findall(r"load_scenario\((.*?)\)\n", text, re.S)
        assert calls, module
        assert all("root=folders.scenarios_folder()" in c for c in calls), (module, calls)


def test_a_yaml_bomb_of_nested_aliases_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    started = time.perf_counter()
    with pytest.raises(ScenarioError, match="more than"):
        load_scenario(_write(tmp_path, "bomb.yaml", "\n".join(lines) + "\n"))
    assert time.perf_counter() - started < 5


def test_the_loader_reads_what_pyyaml_reads(org: Path) -> None:
    text = BASELINE.read_text(encoding="utf-8")
    sc = load_scenario(org / "baseline.yaml")
    assert sc.model_dump()["segments"].keys() == yaml.safe_load(text)["segments"].keys()
