"""SCP statements: the packaged table, lookups, multi-hot vectors, benchmark subsets and scp_codes parsing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from midtecg.data.errors import DataError
from midtecg.data.labels import (
    LABEL_SETS,
    NUM_LABELS,
    SCP_CODES,
    SUPERCLASSES,
    aggregate_labels,
    code_to_description,
    code_to_index,
    description_to_code,
    index_to_code,
    label_set_codes,
    labels_to_vector,
    parse_scp_codes,
    resolve_label,
    scp_statements,
    vector_to_labels,
)


def test_packaged_table_is_the_official_one(ptbxl_fixture):
    official = pd.read_csv(ptbxl_fixture / "scp_statements.csv", index_col=0).sort_index()
    packaged = scp_statements()
    assert list(packaged.index) == list(official.index) == list(SCP_CODES)
    assert (packaged["description"] == official["description"]).all()
    assert NUM_LABELS == 71 and SCP_CODES[:3] == ("1AVB", "2AVB", "3AVB") and SCP_CODES[-1] == "WPW"


def test_subset_sizes_match_the_statement_table():
    table = scp_statements()
    diagnostic = table[table["diagnostic"] == 1]
    assert len(LABEL_SETS["diagnostic"]) == len(diagnostic) == 44
    assert len(LABEL_SETS["subdiagnostic"]) == diagnostic["diagnostic_subclass"].nunique() == 23
    assert LABEL_SETS["superdiagnostic"] == SUPERCLASSES == ("CD", "HYP", "MI", "NORM", "STTC")
    assert len(LABEL_SETS["form"]) == int((table["form"] == 1).sum()) == 19
    assert len(LABEL_SETS["rhythm"]) == int((table["rhythm"] == 1).sum()) == 12
    assert all(list(codes) == sorted(codes) for codes in LABEL_SETS.values())
    with pytest.raises(ValueError, match="unknown label set"):
        label_set_codes("diagnostics")


def test_lookups_in_both_directions():
    for i, code in enumerate(SCP_CODES):
        assert code_to_index(code) == i and index_to_code(i) == code
        assert description_to_code(code_to_description(code)) == code
    assert code_to_description("AFIB") == "atrial fibrillation"
    assert resolve_label(" afib ") == "AFIB" and resolve_label("Atrial Fibrillation") == "AFIB"
    assert resolve_label("nst_") == "NST_"
    with pytest.raises(IndexError):
        index_to_code(71)


@pytest.mark.parametrize("text, suggestion", [("atrial fibrilation", "AFIB"), ("NROM", "NORM"), ("LBBB", "CLBBB")])
def test_unknown_labels_suggest_close_matches(text, suggestion):
    with pytest.raises(ValueError, match=f"unknown SCP statement.*{suggestion}"):
        resolve_label(text)


def test_vectors_round_trip():
    v = labels_to_vector({"NORM": 100.0, "SR": 0.0})  # every key counts, whatever its likelihood
    assert v.dtype == np.float32 and v.shape == (71,) and v.sum() == 2
    assert vector_to_labels(v) == ["NORM", "SR"]
    assert labels_to_vector("afib")[SCP_CODES.index("AFIB")] == 1 and labels_to_vector([]).sum() == 0
    with pytest.raises(ValueError, match="XYZ"):
        labels_to_vector(["XYZ"])


def test_aggregation_to_every_subset():
    table = scp_statements()
    y = np.stack([labels_to_vector(["IMI", "LAFB", "SR"]), labels_to_vector(["NORM"]), labels_to_vector(["PACE"])])
    sup = aggregate_labels(y, "superdiagnostic")
    assert sup.tolist() == [[1, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0]]
    sub = aggregate_labels(y, "subdiagnostic")
    names = LABEL_SETS["subdiagnostic"]
    assert {names[j] for j in np.flatnonzero(sub[0])} == {
        table.at["IMI", "diagnostic_subclass"],
        table.at["LAFB", "diagnostic_subclass"],
    }
    assert aggregate_labels(y, "rhythm")[0, LABEL_SETS["rhythm"].index("SR")] == 1
    assert aggregate_labels(y, "all").tolist() == y.tolist()
    assert aggregate_labels(y, "diagnostic").shape == (3, 44) and aggregate_labels(y[0], "form").shape == (19,)
    # each diagnostic statement lands in exactly its class
    for code in LABEL_SETS["diagnostic"]:
        row = aggregate_labels(labels_to_vector([code]), "superdiagnostic")
        assert row.sum() == 1 and SUPERCLASSES[int(row.argmax())] == table.at[code, "diagnostic_class"]


def test_fixture_labels_cover_all_superclasses(ptbxl_fixture):
    meta = pd.read_csv(ptbxl_fixture / "ptbxl_database.csv", index_col=0)
    y = np.stack([labels_to_vector(parse_scp_codes(s, f"ecg_id {i}")) for i, s in meta["scp_codes"].items()])
    assert aggregate_labels(y, "superdiagnostic").sum(0).min() >= 3


@pytest.mark.parametrize(
    "text, message",
    [
        ("{'NORM': 100.0", "malformed"),
        ("['NORM']", "dict literal"),
        ("{'NORM': 'high'}", "must be a number"),
        ("{'XYZ': 0.0}", "unknown SCP statement 'XYZ'"),
        ("__import__('os').system('true')", "malformed"),
        (float("nan"), "empty"),
    ],
)
def test_parse_scp_codes_rejects_bad_cells_naming_the_record(text, message):
    with pytest.raises(DataError, match=message) as error:
        parse_scp_codes(text, "PTB-XL ecg_id 42")
    assert str(error.value).startswith("PTB-XL ecg_id 42: ")


def test_parse_scp_codes_accepts_official_cells():
    assert parse_scp_codes("{'NORM': 100.0, 'LVOLT': 0.0, 'SR': 0.0}", 1) == {"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}
    assert parse_scp_codes("{}") == {} and parse_scp_codes({"SR": 0}) == {"SR": 0.0}


def test_labels_matrix_stacks_label_vectors():
    from midtecg.data.labels import labels_matrix, labels_to_vector

    rows = [["NORM", "sinus rhythm"], {"IMI": 15.0}, [], "AFIB"]
    matrix = labels_matrix(rows)
    assert matrix.shape == (4, NUM_LABELS) and matrix.dtype == np.float32
    assert (matrix == np.stack([labels_to_vector(r) for r in rows])).all()
    assert matrix[0, SCP_CODES.index("SR")] == 1 and matrix[2].sum() == 0
    assert labels_matrix([]).shape == (0, NUM_LABELS)
    with pytest.raises(ValueError, match="NROM"):
        labels_matrix([["NROM"]])
