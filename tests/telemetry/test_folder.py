"""Reading and writing telemetry folders (orgtwin/telemetry/folder.py).

A folder written by :func:`write_telemetry` reads back equal, typed and lazy; CSV, CSV.gz,
Parquet and subfolders of them read the same; every problem is named by file, table,
column and row, all at once, in one :class:`TelemetryError` without a traceback's words;
``drop_bad_rows`` drops only rows with row problems and counts them per reason; files
outside the folder (through symbolic links) and special files are refused.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
from pathlib import Path

import polars as pl
import pytest

from orgtwin.errors import OrgTwinError, TelemetryError
from orgtwin.telemetry.folder import MAX_LISTED, Telemetry, read_telemetry, write_telemetry
from orgtwin.telemetry.schemas import TABLE_RULES, TELEMETRY_TABLES

SPANS = (
    "trace_id,span_id,parent_id,service,operation,start,duration_ms,status\n"
    "t1,s1,,web,GET /,2024-01-01T00:00:00,5.0,ok\n"
    "t1,s2,s1,db,query,2024-01-01T00:00:00.001,2.5,error\n"
)
CUSTOMERS = (
    "customer,segment,plan,price,start,end,tenure_months,churned,contract\n"
    "c1,smb,basic,20,2023-01-01,2023-06-01,5,true,monthly\n"
    "c2,ent,pro,99.5,2023-02-01,,10,false,yearly\n"
)
ARRIVALS = "time,count,key\n2024-01-01 00:00,3,web\n2024-01-01 00:30,0,web\n"
INCIDENTS = (
    "incident_id,service,team,severity,cause,started,detected,resolved\n"
    "1,web,core,2,deploy,2024-01-01 10:00,2024-01-01 10:05,2024-01-01 11:00\n"
)
VENDORS = "vendor,outage_start,outage_end\npay,2024-01-01 10:00,2024-01-01 12:00\n"


def sample_tables() -> dict[str, pl.DataFrame]:
    """One or two rows of every telemetry table, in its schema."""
    t0 = dt.datetime(2024, 1, 1)
    hour = dt.timedelta(hours=1)
    values: dict[str, list] = {
        "requests": [t0, "web", 100.0, 1.0, 20.0, 80.0, 40.0, 0.5, 3.0],
        "calls": ["web", "db", 10.0],
        "deploys": [t0, "web", "core", 3, False, 4.5],
        "incidents": [1, "web", "core", 2, "deploy", t0, t0 + hour, t0 + 2 * hour],
        "user_days": [t0.date(), 7, "smb", "basic", 20.0, 3, 0, 120.0, False, 31.0],
        "vendor_status": ["pay", t0, t0 + hour],
        "pages": [t0, "core", True, 1],
        "spans": ["t1", "s1", None, "web", "GET /", t0, 5.0, "ok"],
        "customers": ["c1", "smb", "basic", 20.0, t0.date(), None, 5.0, True, 4.0],
        "arrivals": [t0, 3.0, "web"],
    }
    return {
        name: pl.DataFrame([values[name]], schema=TELEMETRY_TABLES[name], orient="row")
        for name in TELEMETRY_TABLES
    }


# --------------------------------------------------------------------------- round trip


def test_every_table_reads_back_equal_and_lazy(tmp_path: Path) -> None:
    tables = sample_tables()
    write_telemetry(tmp_path / "tel", tables)
    telemetry = read_telemetry(tmp_path / "tel")
    assert isinstance(telemetry, Telemetry)
    assert set(telemetry.tables) == set(TELEMETRY_TABLES)
    for name, frame in tables.items():
        assert isinstance(telemetry.tables[name], pl.LazyFrame)
        assert telemetry.tables[name].collect().equals(frame), name
        assert telemetry.rows[name] == 1
        assert telemetry.files[name] == [tmp_path / "tel" / f"{name}.parquet"]
    assert telemetry.dropped == {}


def test_write_replaces_a_telemetry_folder_and_refuses_any_other(tmp_path: Path) -> None:
    target = tmp_path / "tel"
    write_telemetry(target, sample_tables())
    write_telemetry(target, {"arrivals": sample_tables()["arrivals"]})
    assert sorted(p.name for p in target.iterdir()) == ["arrivals.parquet"]
    assert [p.name for p in tmp_path.iterdir()] == ["tel"]  # no temporary folder left
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("precious")
    with pytest.raises(TelemetryError, match="is not a telemetry folder"):
        write_telemetry(home, sample_tables())
    assert (home / "thesis.tex").read_text() == "precious"
    with pytest.raises(TelemetryError, match="did you mean 'spans'"):
        write_telemetry(tmp_path / "other", {"span": sample_tables()["spans"]})


def test_csv_gz_parquet_and_subfolders_read_the_same(make_folder) -> None:
    parquet = read_telemetry(make_folder({"spans.csv": SPANS})).tables["spans"].collect()
    folder = make_folder(
        {
            "spans.csv.gz": SPANS,
            "customers/a.csv": CUSTOMERS,
            "customers/b.parquet": pl.DataFrame(
                {
                    "customer": ["c3"],
                    "segment": ["smb"],
                    "price": [5.0],
                    "tenure_months": [1.0],
                    "churned": [False],
                }
            ),
            "notes.txt": "not telemetry",
            "customers/README": "not telemetry either",
        }
    )
    telemetry = read_telemetry(folder)
    assert telemetry.tables["spans"].collect().equals(parquet)
    customers = telemetry.tables["customers"].collect()
    assert customers["customer"].to_list() == ["c1", "c2", "c3"]
    assert customers["contract"].to_list() == ["monthly", "yearly", None]  # extra column kept
    assert customers.schema["end"] == pl.Date
    assert [p.name for p in telemetry.ignored] == ["README", "notes.txt"]
    assert telemetry.rows == {"customers": 3, "spans": 2}


def test_times_with_offsets_become_utc(make_folder) -> None:
    folder = make_folder(
        {
            "arrivals.csv": (
                "time,count\n2024-01-01T02:00:00+02:00,1\n2024-01-01T00:00:00Z,1\n"
                "2023-12-31T19:00:00-0500,1\n"
            )
        }
    )
    times = read_telemetry(folder).tables["arrivals"].collect()["time"]
    assert times.to_list() == [dt.datetime(2024, 1, 1)] * 3


def test_optional_columns_a_source_lacks_are_null(make_folder) -> None:
    frame = read_telemetry(make_folder({"arrivals.csv": "time,count\n2024-01-01,2\n"}))
    arrivals = frame.tables["arrivals"].collect()
    assert arrivals.columns == ["time", "count", "key"]
    assert arrivals["key"].to_list() == [None]


# --------------------------------------------------------------------------- problems


def test_every_problem_is_named_by_file_table_column_and_row(make_folder) -> None:
    folder = make_folder(
        {
            "spans.csv": SPANS
            + ("t1,s3,s1,db,query,2024-01-01T00:00:01,-4,ok\nt1,s2,s1,,query,yesterday,fast,ok\n"),
            "customers.csv": CUSTOMERS + "c3,smb,basic,20,2023-06-01,2023-01-01,5,maybe,x\n",
        }
    )
    with pytest.raises(TelemetryError) as caught:
        read_telemetry(folder)
    spans, customers = folder / "spans.csv", folder / "customers.csv"
    assert caught.value.problems == [
        f"{customers}: customers.churned row 3 must be true or false, got 'maybe'",
        f"{customers}: customers.end row 3 must not be before start (2023-01-01 < 2023-06-01)",
        f"{spans}: spans.duration_ms row 3 must be >= 0, got -4",
        f"{spans}: spans.start row 4 must be a date-time (ISO 8601, or as the mapping says), "
        "got 'yesterday'",
        f"{spans}: spans.duration_ms row 4 must be a number, got 'fast'",
        f"{spans}: spans.service row 4 must not be null (a key of spans)",
        f"{spans}: spans.span_id row 4 duplicates the id 's2' of an earlier row",
    ]
    assert str(caught.value).startswith(f"{folder}: 7 problems in the telemetry\n  ")


def test_rows_are_numbered_within_their_own_file(make_folder) -> None:
    folder = make_folder({"customers/1.csv": CUSTOMERS, "customers/2.csv": CUSTOMERS})
    with pytest.raises(TelemetryError) as caught:
        read_telemetry(folder)
    assert caught.value.problems == [
        f"{folder / 'customers' / '2.csv'}: customers.customer row {n} duplicates the id "
        f"'c{n}' of an earlier row"
        for n in (1, 2)
    ]


def test_drop_bad_rows_drops_and_counts_per_reason(make_folder) -> None:
    folder = make_folder(
        {
            "spans.csv": SPANS
            + (
                "t1,s3,s1,db,query,2024-01-01T00:00:01,-4,ok\n"
                "t1,s2,s1,,query,yesterday,fast,ok\n"
                "t1,s4,s1,db,query,2024-01-01T00:00:02,1,ok\n"
            )
        }
    )
    telemetry = read_telemetry(folder, drop_bad_rows=True)
    assert telemetry.rows == {"spans": 5}
    assert telemetry.dropped == {
        "spans": {
            "wrong type": 1,
            "unparseable time": 1,
            "null key": 1,
            "negative": 1,
            "duplicate id": 1,
        }
    }
    assert telemetry.tables["spans"].collect()["span_id"].to_list() == ["s1", "s2", "s4"]


def test_table_problems_raise_even_when_dropping(make_folder) -> None:
    folder = make_folder({"arrivals.csv": "time,value\n2024-01-01,1\n"})
    with pytest.raises(TelemetryError, match="arrivals is missing column 'count'"):
        read_telemetry(folder, drop_bad_rows=True)


def test_listing_is_capped_per_table_and_the_rest_counted(make_folder) -> None:
    rows = "".join(f"2024-01-01,{-n}\n" for n in range(1, 31))
    with pytest.raises(TelemetryError) as caught:
        read_telemetry(make_folder({"arrivals.csv": "time,count\n" + rows}))
    assert len(caught.value.problems) == MAX_LISTED + 1
    assert caught.value.problems[-1] == "arrivals: … and 10 more problems (in all: negative 30)"
    assert str(caught.value).splitlines()[0].endswith(": 30 problems in the telemetry")


def test_files_outside_the_folder_and_special_files_are_refused(make_folder, tmp_path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text(SPANS)
    folder = make_folder({})
    (folder / "spans.csv").symlink_to(secret)
    os.mkfifo(folder / "arrivals.csv")
    with pytest.raises(TelemetryError) as caught:
        read_telemetry(folder)
    text = str(caught.value)
    assert "spans file lies outside the folder (through a symbolic link); refused" in text
    assert "arrivals file must be a regular file, got a special file" in text


# A corpus of broken folders: (what is broken, files, a fragment of the message).
CORPUS = [
    (
        "missing column",
        {"spans.csv": SPANS.replace(",duration_ms", "")},
        "spans is missing column 'duration_ms'",
    ),
    (
        "misspelt column",
        {"spans.csv": SPANS.replace("duration_ms", "duraton_ms")},
        "(did you mean 'duraton_ms'?)",
    ),
    (
        "text in a number",
        {"spans.csv": SPANS.replace("5.0", "five")},
        "spans.duration_ms row 1 must be a number, got 'five'",
    ),
    (
        "text in a boolean",
        {"customers.csv": CUSTOMERS.replace("true", "maybe")},
        "customers.churned row 1 must be true or false, got 'maybe'",
    ),
    (
        "text in an integer",
        {"incidents.csv": INCIDENTS.replace(",2,deploy", ",high,deploy")},
        "incidents.severity row 1 must be an integer, got 'high'",
    ),
    (
        "null key",
        {"spans.csv": SPANS.replace(",web,", ",,")},
        "spans.service row 1 must not be null (a key of spans)",
    ),
    (
        "negative duration",
        {"spans.csv": SPANS.replace("2.5", "-2.5")},
        "spans.duration_ms row 2 must be >= 0, got -2.5",
    ),
    (
        "negative count",
        {"arrivals.csv": ARRIVALS.replace(",0,", ",-1,")},
        "arrivals.count row 2 must be >= 0, got -1",
    ),
    (
        "detected before started",
        {"incidents.csv": INCIDENTS.replace("10:05", "09:05")},
        "incidents.detected row 1 must not be before started",
    ),
    (
        "outage ends before it starts",
        {"vendor_status.csv": VENDORS.replace("12:00", "09:00")},
        "vendor_status.outage_end row 1 must not be before outage_start",
    ),
    (
        "customer leaves before joining",
        {"customers.csv": CUSTOMERS.replace("2023-06-01", "2022-06-01")},
        "customers.end row 1 must not be before start",
    ),
    (
        "duplicate span id",
        {"spans.csv": SPANS.replace("t1,s2", "t1,s1")},
        "spans.span_id row 2 duplicates the id 's1' of an earlier row",
    ),
    (
        "duplicate incident id",
        {"incidents.csv": INCIDENTS + INCIDENTS.splitlines()[1] + "\n"},
        "incidents.incident_id row 2 duplicates the id 1",
    ),
    (
        "unparseable time",
        {"arrivals.csv": ARRIVALS.replace("2024-01-01 00:30", "half past")},
        "arrivals.time row 2 must be a date-time",
    ),
    (
        "impossible date",
        {"customers.csv": CUSTOMERS.replace("2023-02-01", "2023-02-30")},
        "customers.start row 2 must be a date (ISO 8601, or as the mapping says), got '2023-02-30'",
    ),
    (
        "mixed time zones",
        {"arrivals.csv": ARRIVALS.replace("00:00,", "00:00+02:00,")},
        "arrivals.time row 2 has no UTC offset while other rows of the file carry one",
    ),
    (
        "nested column",
        {"arrivals.parquet": pl.DataFrame({"time": ["2024-01-01"], "count": [[1]]})},
        "arrivals.count must be a column of plain values, got List(Int64)",
    ),
    (
        "epoch numbers without a unit",
        {"arrivals.parquet": pl.DataFrame({"time": [1], "count": [1]})},
        "arrivals.time must be date-times or text, got Int64 "
        "(give its epoch unit in a mapping file)",
    ),
    ("empty file", {"spans.csv": ""}, "spans file cannot be read"),
    (
        "ragged row",
        {"arrivals/a.csv": ARRIVALS, "arrivals/b.csv": ARRIVALS + "2024-01-01,1,web,extra\n"},
        "b.csv: arrivals file cannot be read: found more fields than defined",
    ),
    (
        "unknown status",
        {"spans.csv": SPANS.replace(",error", ",failed")},
        "spans.status row 2 must be one of 'ok', 'error', 'unset', got 'failed'",
    ),
    ("broken gzip", {"spans.csv.gz": b"\x1f\x8b\x08\x00garbage"}, "spans file cannot be read"),
    (
        "several missing columns",
        {"spans.csv": "trace_id\nt1\n"},
        "spans is missing columns 'span_id', 'parent_id', 'service', 'start', 'duration_ms' "
        "(it has: trace_id)",
    ),
    ("not Parquet", {"spans.parquet": SPANS}, "spans file cannot be read"),
]


@pytest.mark.parametrize(("files", "fragment"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_a_broken_folder_fails_with_a_clear_message(make_folder, files, fragment) -> None:
    folder = make_folder(files)
    with pytest.raises(TelemetryError) as caught:
        read_telemetry(folder)
    text = str(caught.value)
    assert fragment in text
    assert text.startswith(f"{folder}: ")
    assert "Traceback" not in text and "polars" not in text.lower()
    assert isinstance(caught.value, OrgTwinError) and isinstance(caught.value, ValueError)


def test_rules_name_only_columns_of_their_table() -> None:
    for name, rules in TABLE_RULES.items():
        named = {*rules.keys, *rules.unique, *rules.times, *rules.non_negative, *rules.optional}
        named |= {c for pair in rules.ordered for c in pair} | {c for c, _ in rules.choices}
        assert named <= set(TELEMETRY_TABLES[name]), name
    assert set(TABLE_RULES) == set(TELEMETRY_TABLES)


def test_a_folder_that_is_not_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TelemetryError, match="must be a telemetry folder, got nothing"):
        read_telemetry(tmp_path / "absent")


def test_the_error_pickles_with_every_problem(make_folder) -> None:
    with pytest.raises(TelemetryError) as caught:
        read_telemetry(make_folder({"spans.csv": SPANS.replace("2.5", "-2.5")}))
    copy = pickle.loads(pickle.dumps(caught.value))
    assert str(copy) == str(caught.value) and copy.problems == caught.value.problems


def test_each_file_may_keep_its_own_time_zone_habit(make_folder) -> None:
    folder = make_folder(
        {"arrivals/a.csv": "time,count\n2024-01-01T00:00:00Z,1\n", "arrivals/b.csv": ARRIVALS}
    )
    assert read_telemetry(folder).rows == {"arrivals": 3}
