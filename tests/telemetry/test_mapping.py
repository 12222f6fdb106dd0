"""Mapping files (orgtwin/telemetry/mapping.py) and the shipped examples on the real data.

A mapping renames source columns, sets constants, maps values, extracts with a pattern,
scales units and parses epoch numbers, shifted epochs, strftime text and local times into
UTC; the mapped table is validated like any other, naming the mapping for a source column
a file lacks. A broken mapping file fails with every problem at once. The examples in
``examples/telemetry/`` read the real data sets in ``../shared/data`` with the right row
counts (skipped when the data is absent).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from orgtwin.errors import TelemetryError
from orgtwin.telemetry.folder import read_telemetry
from orgtwin.telemetry.mapping import load_mapping

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "telemetry"

SOURCE = (
    "id,Plan,Fee,Months,Left,Joined,Region\n"
    "a-1,Gold,1000,3,Yes,05/01/2024 10:00,eu\n"
    "b-2,Tin,250,12,No,06/01/2024 10:00,us\n"
)
MAPPING = """
tables:
  customers:
    files: [crm/*.csv]
    columns: {customer: id, segment: Plan, price: Fee, tenure_months: Months,
              churned: Left, start: Joined}
    values: {churned: {"Yes": true, "No": false}}
    extract: {customer: '^(\\w)-'}
    scale: {price: 0.01}
    constants: {plan: standard}
    time: {start: {format: "%d/%m/%Y %H:%M", timezone: Europe/Berlin}}
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def test_a_mapping_renames_maps_scales_and_keeps_the_rest(tmp_path: Path) -> None:
    write(tmp_path, {"crm/export.csv": SOURCE, "map.yaml": MAPPING})
    telemetry = read_telemetry(tmp_path, mapping=tmp_path / "map.yaml")
    customers = telemetry.tables["customers"].collect()
    assert customers.to_dicts()[0] == {
        "customer": "a",
        "segment": "Gold",
        "plan": "standard",
        "price": 10.0,
        "start": dt.date(2024, 1, 5),
        "end": None,
        "tenure_months": 3.0,
        "churned": True,
        "entry_tenure_months": None,
        "Region": "eu",
    }
    assert customers["churned"].to_list() == [True, False]
    assert telemetry.files == {"customers": [tmp_path / "crm" / "export.csv"]}
    assert [p.name for p in telemetry.ignored] == ["map.yaml"]


def test_local_times_become_utc(tmp_path: Path) -> None:
    write(tmp_path, {"crm/export.csv": SOURCE.replace("10:00", "00:30"), "map.yaml": MAPPING})
    customers = read_telemetry(tmp_path, mapping=tmp_path / "map.yaml").tables["customers"]
    # 00:30 in Berlin (UTC+1 in winter) is 23:30 UTC the day before
    assert customers.collect()["start"].to_list() == [dt.date(2024, 1, 4), dt.date(2024, 1, 5)]


@pytest.mark.parametrize(
    ("unit", "offset_s", "value", "expected"),
    [
        ("s", 0, "1704067200", dt.datetime(2024, 1, 1)),
        ("ms", 0, "1704067200123", dt.datetime(2024, 1, 1, 0, 0, 0, 123000)),
        ("us", 0, "1704067200123456", dt.datetime(2024, 1, 1, 0, 0, 0, 123456)),
        ("ns", 0, "1704067200123456789", dt.datetime(2024, 1, 1, 0, 0, 0, 123456)),
        ("s", 0, "1704067200.5", dt.datetime(2024, 1, 1, 0, 0, 0, 500000)),
        ("s", -200_000_000, "1904067200", dt.datetime(2024, 1, 1)),
    ],
)
def test_epoch_numbers_in_every_unit(tmp_path: Path, unit, offset_s, value, expected) -> None:
    mapping = (
        "tables:\n  arrivals:\n    files: [a.csv]\n    columns: {time: ts, count: n}\n"
        f"    time: {{time: {{unit: {unit}, offset_s: {offset_s}}}}}\n"
    )
    write(tmp_path, {"a.csv": f"ts,n\n{value},1\n", "m.yaml": mapping})
    arrivals = read_telemetry(tmp_path, mapping=tmp_path / "m.yaml").tables["arrivals"]
    assert arrivals.collect()["time"].to_list() == [expected]


def test_mapped_tables_are_validated_like_any(tmp_path: Path) -> None:
    write(tmp_path, {"crm/export.csv": SOURCE.replace(",No,", ",Maybe,"), "map.yaml": MAPPING})
    with pytest.raises(TelemetryError) as caught:
        read_telemetry(tmp_path, mapping=tmp_path / "map.yaml")
    assert caught.value.problems == [
        f"{tmp_path / 'crm' / 'export.csv'}: customers.churned row 2 must be true or false, "
        "got 'Maybe'"
    ]


def test_a_source_column_a_file_lacks_is_named_with_a_hint(tmp_path: Path) -> None:
    write(tmp_path, {"crm/export.csv": SOURCE, "map.yaml": MAPPING.replace("Fee", "Fees")})
    with pytest.raises(TelemetryError) as caught:
        read_telemetry(tmp_path, mapping=tmp_path / "map.yaml")
    assert caught.value.problems == [
        f"{tmp_path / 'crm' / 'export.csv'}: mapping customers.columns.price names column "
        "'Fees', which the file lacks (did you mean 'Fee'?)"
    ]


def test_a_pattern_that_matches_nothing_is_named(tmp_path: Path) -> None:
    write(tmp_path, {"map.yaml": MAPPING})
    with pytest.raises(TelemetryError, match=r"tables.customers.files\[0\] matches no CSV"):
        read_telemetry(tmp_path, mapping=tmp_path / "map.yaml")


def test_every_problem_of_a_mapping_file_at_once(tmp_path: Path) -> None:
    path = (
        write(
            tmp_path,
            {
                "bad.yaml": """
tables:
  customer: {files: [x.csv]}
  spans:
    files: []
    columns: {servise: PodName}
    time: {start: {unit: minutes}, service: {unit: s}}
    extract: {operation: nogroup}
    scale: {duration_ms: fast}
  arrivals:
    files: [a.csv]
    time: {time: {timezone: Mars/Olympus}}
    bogus: 1
"""
            },
        )
        / "bad.yaml"
    )
    with pytest.raises(TelemetryError) as caught:
        load_mapping(path)
    assert str(caught.value).splitlines()[0] == f"{path}: 9 problems in the mapping file"
    assert [line.removeprefix(f"{path}: ") for line in caught.value.problems] == [
        "tables.spans.files must have at least 1 entry, got none",
        "tables.spans.extract.operation must have a capturing group, got 'nogroup'",
        "tables.spans.scale.duration_ms must be a number, got 'fast'",
        "tables.spans.time.start.unit must be 'ns', 'us', 'ms' or 's', got 'minutes'",
        "tables.arrivals.time.time.timezone must be an IANA time zone such as "
        "'Europe/Berlin', got 'Mars/Olympus'",
        "tables.arrivals.bogus is not a known key",
        "tables.customer is not a telemetry table (did you mean 'customers'?)",
        "tables.spans.columns.servise is not a field of spans (did you mean 'service'?)",
        "tables.spans.time.service must be a time field (start), got 'service'",
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("tables: {a: 1}\ntables: {b: 2}\n", "duplicate key 'tables'"),
        ("!!python/object/apply:os.system ['true']\n", "no !!python/… tags"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("tables: [unclosed\n", "is not valid YAML"),
    ],
)
def test_mapping_files_are_safe_loaded(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "m.yaml").write_text(text)
    with pytest.raises(TelemetryError, match=r"m\.yaml: ") as caught:
        load_mapping(tmp_path / "m.yaml")
    assert fragment in str(caught.value)
    assert "scenario" not in str(caught.value)


def test_every_example_mapping_loads() -> None:
    examples = sorted(EXAMPLES.glob("*.yaml"))
    assert [p.stem for p in examples] == [
        "azure_llm_inference",
        "nezha_onlineboutique",
        "nyc_taxi",
        "telco_churn",
    ]
    for path in examples:
        assert load_mapping(path).tables


# --------------------------------------------------------------------------- real data


def test_telco_churn_reads_as_customers(real_data) -> None:
    telemetry = read_telemetry(real_data("telco_churn"), mapping=EXAMPLES / "telco_churn.yaml")
    customers = telemetry.tables["customers"].collect()
    assert telemetry.rows == {"customers": 7043} and customers.height == 7043
    assert round(customers["churned"].mean(), 3) == 0.265
    assert "TotalCharges" not in customers.columns
    assert {"gender", "PaymentMethod", "InternetService"} <= set(customers.columns)
    assert set(customers["segment"]) == {"Month-to-month", "One year", "Two year"}
    assert customers["tenure_months"].min() == 0 and customers["price"].min() > 0


def test_nyc_taxi_reads_as_arrivals(real_data) -> None:
    telemetry = read_telemetry(real_data("nyc_taxi"), mapping=EXAMPLES / "nyc_taxi.yaml")
    arrivals = telemetry.tables["arrivals"].collect()
    assert arrivals.height == 10_320
    assert arrivals["time"].min() == dt.datetime(2014, 7, 1)
    assert arrivals["time"].diff().drop_nulls().unique().to_list() == [dt.timedelta(minutes=30)]


def test_azure_llm_inference_reads_as_one_arrival_per_request(real_data) -> None:
    folder = real_data("azure_llm_inference")
    telemetry = read_telemetry(folder, mapping=EXAMPLES / "azure_llm_inference.yaml")
    arrivals = telemetry.tables["arrivals"].collect()
    counts = dict(arrivals.group_by("key").len().iter_rows())
    assert counts == {"code": 8_819, "conv": 19_366}  # lines less the header
    assert telemetry.rows == {"arrivals": 28_185}
    assert arrivals["count"].unique().to_list() == [1.0]
    assert arrivals.schema["ContextTokens"] == pl.String  # kept, as text


def test_nezha_reads_spans_and_per_minute_requests(real_data) -> None:
    folder = real_data("nezha_onlineboutique")
    mapping = EXAMPLES / "nezha_onlineboutique.yaml"
    with pytest.raises(TelemetryError, match=r"spans\.span_id row \d+ duplicates the id"):
        read_telemetry(folder, mapping=mapping)
    telemetry = read_telemetry(folder, mapping=mapping, drop_bad_rows=True)
    assert telemetry.rows == {"spans": 96_812, "requests": 12_090}
    assert telemetry.dropped == {"spans": {"duplicate id": 435}}  # spans in two minute files
    spans = telemetry.tables["spans"].collect()
    assert spans.height == 96_812 - 435
    assert spans["service"].n_unique() == 10 and "frontend" in spans["service"].to_list()
    roots = spans.filter(pl.col("parent_id").is_null())
    assert roots.height > 0 and (spans["duration_ms"] >= 0).all()
    assert spans["start"].dt.date().unique().to_list() == [dt.date(2022, 8, 22)]
    requests = telemetry.tables["requests"].collect()
    assert requests["service"].n_unique() == 10
    assert requests["latency_p95_ms"].median() > 1  # seconds became ms


def test_files_may_be_relative_to_the_mapping_file(tmp_path: Path) -> None:
    mapping = "files_relative_to: mapping\n" + MAPPING
    write(tmp_path, {"maps/crm/export.csv": SOURCE, "maps/map.yaml": mapping})
    (tmp_path / "empty").mkdir()
    telemetry = read_telemetry(tmp_path / "empty", mapping=tmp_path / "maps" / "map.yaml")
    assert telemetry.rows == {"customers": 2}


def test_a_value_map_for_a_field_nothing_gives_is_named(tmp_path: Path) -> None:
    mapping = MAPPING.replace("values: {churned:", "values: {cause: {x: y}, churned:")
    write(tmp_path, {"crm/export.csv": SOURCE, "map.yaml": mapping})
    with pytest.raises(TelemetryError, match="is not a field of customers"):
        read_telemetry(tmp_path, mapping=tmp_path / "map.yaml")
    mapping = MAPPING.replace("values: {churned:", "values: {plan: {x: y}, churned:")
    mapping = mapping.replace("    constants: {plan: standard}\n", "")
    write(tmp_path, {"map.yaml": mapping})
    with pytest.raises(TelemetryError) as caught:
        read_telemetry(tmp_path, mapping=tmp_path / "map.yaml")
    assert caught.value.problems == [
        f"{tmp_path / 'crm' / 'export.csv'}: mapping customers.values.plan names field 'plan', "
        "which neither columns: nor the file gives"
    ]
