"""Every dataset matches its schema, and damaged copies fail with a precise message."""

from __future__ import annotations

import csv
import functools
import http.server
import io
import json
import shutil
import threading

import pandas as pd
import pytest
from conftest import ROOT

from mcf_course import DatasetError, list_datasets, load_dataset
from mcf_course.data import DATA_ENV, data_location, raw_data_url, validate_all

DATA = ROOT / "datasets"
DESCRIPTOR = json.loads((DATA / "datapackage.json").read_text(encoding="utf-8"))
RESOURCES = {r["name"]: r for r in DESCRIPTOR["resources"]}


def test_every_dataset_matches_its_schema():
    problems = validate_all(str(DATA))
    assert not problems, "\n".join(map(str, problems))


def test_datapackage_is_a_valid_frictionless_package():
    from frictionless import Package

    report = Package(str(DATA / "datapackage.json")).validate()
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_each_dataset_has_a_readme_describing_every_column(name):
    folder = (DATA / RESOURCES[name]["path"]).parent
    readme = (folder / "README.md").read_text(encoding="utf-8")
    for field in RESOURCES[name]["schema"]["fields"]:
        assert f"`{field['name']}`" in readme, f"{folder}/README.md does not describe {field['name']}"
    index = (DATA / "README.md").read_text(encoding="utf-8")
    assert name in index, f"datasets/README.md does not list {name}"


@pytest.mark.parametrize("name", sorted(RESOURCES))
def test_every_row_has_a_source_and_a_confidence(name):
    frame = load_dataset(name, str(DATA))
    assert frame["source"].notna().all() and frame["confidence"].notna().all()


def test_load_dataset_gives_schema_types():
    events = load_dataset("policy_timeline", str(DATA))
    assert pd.api.types.is_datetime64_any_dtype(events["written_date"])
    assert pd.api.types.is_bool_dtype(events["disputed"])
    assert pd.api.types.is_string_dtype(events["date"]), "mixed-precision dates stay text"
    assert events["event_id"].is_unique
    assert list(events.columns) == [f["name"] for f in RESOURCES["policy_timeline"]["schema"]["fields"]]
    assert set(list_datasets(str(DATA))) == set(RESOURCES)


def test_unknown_dataset_name_lists_the_real_ones():
    with pytest.raises(KeyError, match="policy_timeline"):
        load_dataset("timeline", str(DATA))


# --- deliberately broken copies -------------------------------------------------------------

def rewrite(folder, name, change):
    """Apply ``change(header, rows)`` to a dataset in a copied folder."""
    path = folder / RESOURCES[name]["path"]
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = list(reader.fieldnames), list(reader)
    header, rows = change(header, rows)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


def set_cell(row_number, field, value):
    def change(header, rows):
        rows[row_number - 1][field] = value
        return header, rows
    return change


def drop_column(field):
    def change(header, rows):
        return [h for h in header if h != field], rows
    return change


BROKEN = [
    # (dataset, change, file, row, field, words that must appear)
    ("policy_timeline", drop_column("confidence"), "policy_timeline.csv", "header", "confidence",
     "missing"),
    ("policy_timeline", set_cell(3, "date", "2017-02-30"), "policy_timeline.csv", "row 3", "date",
     "not a real date"),
    ("policy_timeline", set_cell(5, "written_date", "19 Nov 2017"), "policy_timeline.csv", "row 5",
     "written_date", "YYYY-MM-DD"),
    ("policy_timeline", set_cell(4, "source", "  "), "policy_timeline.csv", "row 4", "source",
     "required"),
    ("policy_timeline", set_cell(2, "theme", "military"), "policy_timeline.csv", "row 2", "theme",
     "not an allowed category"),
    ("policy_timeline", set_cell(6, "date_precision", "year"), "policy_timeline.csv", "row 6",
     "date_precision", "says 'year'"),
    ("policy_timeline", set_cell(7, "event_id", "T001"), "policy_timeline.csv", "row 7",
     "event_id", "unique"),
    ("policy_timeline", set_cell(8, "disputed", "maybe"), "policy_timeline.csv", "row 8",
     "disputed", "boolean"),
    ("actors", set_cell(2, "actor_type", "think tank"), "actors.csv", "row 2", "actor_type",
     "not an allowed category"),
    ("actors", set_cell(3, "key_event_id", "T999"), "actors.csv", "row 3", "key_event_id",
     "does not match any policy_timeline row"),
    ("terms", set_cell(1, "source_url", "www.example.org/page"), "terms.csv", "row 1",
     "source_url", "expected form"),
    # evidence: a quotation, or a reason; the row's numbers and year must be in it
    ("actors", set_cell(4, "evidence", "The ministry said so."), "actors.csv", "row 4", "evidence",
     "must be a quotation"),
    ("terms", set_cell(2, "evidence", "No quote: none"), "terms.csv", "row 2", "evidence",
     "must say why"),
    ("platform_stats", set_cell(5, "value", "4242"), "platform_stats.csv", "row 5", "evidence",
     "does not appear in the evidence"),
    ("identifier_stats", set_cell(3, "as_of", "1999-12"), "identifier_stats.csv", "row 3", "evidence",
     "year of as_of (1999)"),
    ("shipbuilding_ecosystem", set_cell(1, "evidence", "“" + "很长" * 150 + "”"), "shipbuilding_ecosystem.csv",
     "row 1", "evidence", "characters"),
    ("identifier_nodes", set_cell(2, "disputed", "perhaps"), "identifier_nodes.csv", "row 2", "disputed",
     "boolean"),
    ("shipbuilding_ecosystem", set_cell(5, "evidence_kind", "rumour"), "shipbuilding_ecosystem.csv", "row 5",
     "evidence_kind", "not an allowed category"),
]


@pytest.mark.parametrize(("name", "change", "file", "row", "field", "words"), BROKEN,
                         ids=[f"{b[0]}-{b[4]}-{b[5].split()[0]}" for b in BROKEN])
def test_broken_copy_names_file_row_and_field(tmp_path, name, change, file, row, field, words):
    shutil.copytree(DATA, tmp_path / "datasets")
    rewrite(tmp_path / "datasets", name, change)
    with pytest.raises(DatasetError) as caught:
        load_dataset(name, str(tmp_path / "datasets"))
    message = str(caught.value)
    assert file in message and row in message and f"field '{field}'" in message and words in message, message
    problems = validate_all(str(tmp_path / "datasets"))
    assert any(p.field == field for p in problems)


def test_the_original_is_untouched_by_the_broken_copies():
    assert not validate_all(str(DATA))


# --- finding the data from wherever a notebook runs ----------------------------------------

def test_data_is_found_from_a_nested_folder_of_a_clone(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert data_location(ROOT / "exercises" / "module1") == str(DATA)


def test_data_is_found_beside_the_package_from_anywhere(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # like a released folder on a JupyterHub: no datasets/ above
    assert data_location() == str(DATA)


def test_raw_url_is_derived_from_the_repository_setting():
    assert raw_data_url("https://github.com/owner/repo", "main") == \
        "https://raw.githubusercontent.com/owner/repo/main/datasets/"


def test_data_loads_over_http_like_on_colab(monkeypatch):
    """Serve datasets/ from a real local web server and load through the URL path."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(DATA))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv(DATA_ENV, f"http://127.0.0.1:{server.server_address[1]}/")
        remote = load_dataset("actors")
    finally:
        server.shutdown()
    pd.testing.assert_frame_equal(remote, load_dataset("actors", str(DATA)))


def test_without_data_or_network_the_message_says_what_to_do(monkeypatch, tmp_path):
    """A notebook downloaded alone, on a machine that cannot reach the repository."""
    from mcf_course.data import DataUnavailable, _download

    _download.cache_clear()
    monkeypatch.setenv(DATA_ENV, "http://127.0.0.1:9/datasets/")  # nothing listens there
    with pytest.raises(DataUnavailable) as caught:
        load_dataset("actors")
    message = str(caught.value)
    assert "could not be downloaded" in message and DATA_ENV in message and "archive" in message
    rendered = caught.value._render_traceback_()  # what IPython shows instead of a traceback
    assert rendered[0].startswith("DataUnavailable:") and not any("Traceback" in line for line in rendered)
    monkeypatch.setenv(DATA_ENV, str(tmp_path))  # a folder without the data
    with pytest.raises(DataUnavailable, match="datapackage.json"):
        load_dataset("actors")
