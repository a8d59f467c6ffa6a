"""Request validation: coercion per column kind, refusals and flags naming record and field."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from assay.data.schema import ColumnSchema, infer_schema
from assay.errors import DataError
from assay.model.validation import (
    FLAG_CODES,
    REFUSAL_CODES,
    RecordIssue,
    RecordValidator,
    ValidatedBatch,
    build_frame,
    validate_records,
)

COLUMNS = [
    ColumnSchema("age", "integer", "int64", nullable=False, n_unique=50, min=18.0, max=90.0),
    ColumnSchema("income", "numeric", "float64", nullable=True, n_unique=900, min=0.0, max=2e5),
    ColumnSchema(
        "plan",
        "categorical",
        "str",
        nullable=False,
        n_unique=3,
        categories=("basic", "pro", "team"),
    ),
    ColumnSchema(
        "store", "categorical", "object", nullable=False, n_unique=2, categories=("1", "2")
    ),
    ColumnSchema(
        "active", "boolean", "bool", nullable=False, n_unique=2, categories=("False", "True")
    ),
    ColumnSchema(
        "signup",
        "datetime",
        "datetime64[us]",
        nullable=False,
        n_unique=300,
        min="2024-01-01 00:00:00",
        max="2024-12-31 00:00:00",
    ),
    ColumnSchema("note", "text", "str", nullable=True, n_unique=300),
]
FEATURES = [c.name for c in COLUMNS]


def good(**changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        "age": 40,
        "income": 5000.5,
        "plan": "pro",
        "store": "1",
        "active": True,
        "signup": "2024-05-01T13:45:00Z",
        "note": "likes the product",
    }
    record.update(changes)
    return record


def check(*records: object) -> ValidatedBatch:
    return validate_records(list(records), COLUMNS, FEATURES)


def only_error(batch: ValidatedBatch) -> RecordIssue:
    assert len(batch.errors) == 1, batch.errors
    return batch.errors[0]


def test_clean_records_pass_with_coerced_values_and_no_flags() -> None:
    batch = check(good(), good(age=18, plan="team", active=False))
    assert batch.ok and batch.valid_index == (0, 1) and batch.flags == ((), ())
    assert batch.records[0] == {
        "age": 40.0,
        "income": 5000.5,
        "plan": "pro",
        "store": "1",
        "active": True,
        "signup": datetime(2024, 5, 1, 13, 45, tzinfo=UTC),
        "note": "likes the product",
    }


def test_numeric_strings_are_read_as_numbers() -> None:
    batch = check(good(age=" 41 ", income="1.5e3"))
    assert batch.ok
    assert batch.records[0]["age"] == 41.0 and batch.records[0]["income"] == 1500.0


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("forty", "expected a number, got the string 'forty'"),
        (True, "expected a number, got the boolean true"),
        (float("inf"), "expected a finite number"),
        ("nan", "expected a finite number"),
        ([1, 2], "expected a number, got a list"),
        ({"v": 1}, "expected a number, got an object"),
    ],
)
def test_unreadable_numbers_are_refused_naming_record_and_field(value: object, reason: str) -> None:
    batch = check(good(), good(age=value))
    issue = only_error(batch)
    assert (issue.index, issue.field, issue.code) == (1, "age", "type")
    assert reason in issue.reason
    assert batch.valid_index == (0,)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("yes", True),
        ("N", False),
        (" true ", True),
        ("0", False),
        ("t", True),
    ],
)
def test_boolean_spellings(value: object, expected: bool) -> None:
    batch = check(good(active=value))
    assert batch.ok and batch.records[0]["active"] is expected


def test_an_unreadable_boolean_is_refused() -> None:
    issue = only_error(check(good(active="maybe")))
    assert issue.code == "type" and issue.field == "active"
    assert "expected true or false, got the string 'maybe'" in issue.reason


def test_validation_and_the_training_encoder_read_the_same_boolean_words() -> None:
    from assay.data.values import FALSE_WORDS, TRUE_WORDS
    from assay.train.preprocess import BooleanEncoder

    words = [*sorted(TRUE_WORDS), *sorted(FALSE_WORDS)]
    words += [w.upper() for w in words]
    truth = [w.lower() in TRUE_WORDS for w in words]
    batch = check(*(good(active=w) for w in words))
    assert batch.ok and [r["active"] for r in batch.records] == truth
    encoded = BooleanEncoder().fit_transform(pd.DataFrame({"active": words}))
    assert encoded[:, 0].tolist() == [float(t) for t in truth]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T13:45:00Z", datetime(2024, 5, 1, 13, 45, tzinfo=UTC)),
        ("2024-05-01T15:45:00+02:00", datetime(2024, 5, 1, 13, 45, tzinfo=UTC)),
        ("2024-05-01 13:45", datetime(2024, 5, 1, 13, 45, tzinfo=UTC)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        (pd.Timestamp("2024-05-01 13:45"), datetime(2024, 5, 1, 13, 45, tzinfo=UTC)),
    ],
)
def test_datetimes_are_iso_strings_read_as_utc(value: object, expected: datetime) -> None:
    batch = check(good(signup=value))
    assert batch.ok and batch.records[0]["signup"] == expected


@pytest.mark.parametrize("value", ["05/01/2024", "yesterday", 1714571100, 1.7e12])
def test_non_iso_datetimes_are_refused(value: object) -> None:
    issue = only_error(check(good(signup=value)))
    assert (issue.field, issue.code) == ("signup", "type")
    assert "ISO 8601" in issue.reason


def test_categories_are_compared_as_strings() -> None:
    batch = check(good(store=2), good(store=2.0), good(store="3"), good(plan="enterprise"))
    assert batch.ok
    assert [r["store"] for r in batch.records] == ["2", "2", "3", "1"]
    assert batch.flags == ((), (), ("unknown_category",), ("unknown_category",))
    (issue,) = batch.warnings[3]
    assert issue.field == "plan" and "'enterprise' was not seen in training" in issue.reason


def test_a_list_as_category_is_refused() -> None:
    issue = only_error(check(good(plan=["pro"])))
    assert issue.code == "type" and "expected a category value" in issue.reason


def test_missing_required_field_is_refused_but_a_nullable_one_may_be_left_out() -> None:
    without_age = good()
    del without_age["age"]
    without_income = good()
    del without_income["income"]
    batch = check(without_age, without_income)
    issue = only_error(batch)
    assert (issue.index, issue.field, issue.code) == (0, "age", "missing")
    assert "the required field 'age' is missing" in issue.reason
    assert batch.valid_index == (1,) and batch.records[0]["income"] is None
    assert batch.flags == ((),)


def test_null_in_a_column_without_missing_values_is_answered_but_flagged() -> None:
    batch = check(good(age=None), good(income=None), good(age=float("nan")))
    assert batch.ok
    assert batch.flags == (("unexpected_null",), (), ("unexpected_null",))
    assert batch.records[0]["age"] is None and batch.records[2]["age"] is None


def test_out_of_range_numbers_and_dates_are_flagged() -> None:
    batch = check(good(age=120), good(signup="2030-01-01"), good(age=90, income=0))
    assert batch.ok
    assert batch.flags == (("out_of_range",), ("out_of_range",), ())
    assert "120 is outside the training range 18 .. 90" in batch.warnings[0][0].reason


def test_unknown_fields_are_flagged_by_name() -> None:
    batch = check(good(customer_id="c-17", churned=1))
    assert batch.ok and batch.flags == (("unknown_field",),)
    assert [w.field for w in batch.warnings[0]] == ["customer_id", "churned"]


def test_declared_columns_pass_through_without_a_flag() -> None:
    records = [good(customer_id="c-17", seen_at="2024-06-01", churned=1, colour="red")]
    batch = validate_records(records, COLUMNS, FEATURES,
                             passthrough=["customer_id", "seen_at", "churned"])
    assert batch.ok and batch.flags == (("unknown_field",),)
    assert [(w.field, w.code) for w in batch.warnings[0]] == [("colour", "unknown_field")]
    assert batch.flag_fields(0) == ["unknown_field:colour"]
    assert "colour" not in batch.records[0] and "customer_id" not in batch.records[0]
    # only declared columns: no flag at all, and nothing but the features is scored
    clean = validate_records([good(customer_id="c-18", seen_at="x")], COLUMNS, FEATURES,
                             passthrough=["customer_id", "seen_at"])
    assert clean.flags == ((),) and list(clean.frame.columns) == FEATURES


def test_a_feature_named_as_passthrough_is_still_checked() -> None:
    validator = RecordValidator(COLUMNS, FEATURES, passthrough=["age", "customer_id"])
    assert validator.passthrough == ("customer_id",)
    assert validator.validate([good(age="old")]).errors[0].field == "age"


def test_not_an_object_is_refused_and_other_records_still_answered() -> None:
    batch = check(good(), [1, 2], "x", good(age="old"), good(plan="new"))
    assert [(e.index, e.field, e.code) for e in batch.errors] == [
        (1, "(record)", "not_an_object"),
        (2, "(record)", "not_an_object"),
        (3, "age", "type"),
    ]
    assert batch.valid_index == (0, 4)
    assert batch.flags == ((), ("unknown_category",))
    assert len(batch.frame) == 2


def test_several_problems_in_one_record_are_all_reported() -> None:
    record = good(age="x", active="perhaps")
    del record["plan"]
    batch = check(record)
    assert {(e.field, e.code) for e in batch.errors} == {
        ("age", "type"),
        ("plan", "missing"),
        ("active", "type"),
    }
    assert batch.valid_index == ()


def test_records_must_be_a_list() -> None:
    with pytest.raises(DataError, match="the records to score must be a list of objects"):
        validate_records(good(), COLUMNS, FEATURES)  # type: ignore[arg-type]


def test_a_feature_without_schema_is_an_error() -> None:
    with pytest.raises(DataError, match="column 'ghost'.*a feature has no column schema"):
        RecordValidator(COLUMNS, [*FEATURES, "ghost"])


def test_codes_are_partitioned() -> None:
    assert set(REFUSAL_CODES) == {"missing", "type", "not_an_object"}
    assert set(FLAG_CODES) == {
        "unknown_category",
        "out_of_range",
        "unexpected_null",
        "unknown_field",
    }


def test_frame_has_features_in_order_with_training_dtypes() -> None:
    batch = check(good(note=None), good(income=None, age=20))
    frame = batch.frame
    assert list(frame.columns) == FEATURES
    assert frame["age"].dtype == np.int64
    assert frame["income"].dtype == np.float64 and np.isnan(frame["income"].iloc[1])
    assert frame["active"].dtype == bool
    assert str(frame["signup"].dtype) == "datetime64[us]"
    assert frame["signup"].iloc[0] == pd.Timestamp("2024-05-01 13:45")
    assert frame["plan"].tolist() == ["pro", "pro"]
    assert pd.isna(frame["note"].iloc[0])


def test_integer_column_with_a_null_becomes_float() -> None:
    frame = check(good(age=None)).frame
    assert frame["age"].dtype == np.float64 and np.isnan(frame["age"].iloc[0])


def test_the_frame_is_built_once_and_the_batch_is_frozen() -> None:
    batch = check(good())
    assert batch.frame is batch.frame
    with pytest.raises(dataclasses.FrozenInstanceError):
        batch.frame = pd.DataFrame()  # type: ignore[misc]


def test_a_batch_can_be_made_from_a_given_frame() -> None:
    given = pd.DataFrame({"age": [40]})
    batch = ValidatedBatch(frame=given, valid_index=(0,), errors=(), flags=((),))
    assert batch.frame is given and batch.records == ()


def test_results_round_trip_through_json() -> None:
    batch = check(good(), good(age="x"), good(plan="vip", extra=1))
    data = json.loads(json.dumps(batch.to_dict()))
    again = ValidatedBatch.from_dict(data)
    assert again.errors == batch.errors and again.flags == batch.flags
    assert again.warnings == batch.warnings and again.valid_index == batch.valid_index
    assert again.columns == batch.columns
    issue = batch.errors[0]
    assert RecordIssue.from_dict(issue.to_dict()) == issue and issue.refused


def test_inferred_schema_accepts_its_own_rows() -> None:
    frame = pd.DataFrame(
        {
            "n": [1.5, None, 3.0],
            "k": ["a", "b", None],
            "b": [True, False, True],
            "d": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
        }
    )
    schema = infer_schema(frame)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    batch = validate_records(records, schema.columns, schema.names)
    assert batch.ok and batch.flags == ((), (), ())
    rebuilt = build_frame(batch.records, schema.columns)
    pd.testing.assert_frame_equal(rebuilt, frame, check_dtype=False)


def test_validated_frame_scores_like_the_training_rows(serving_template) -> None:  # type: ignore[no-untyped-def]
    t = serving_template
    record = t.registry.get(t.second)
    columns = [ColumnSchema.from_dict(c) for c in record.schema["columns"]]
    batch = validate_records(t.records(40), columns, record.lineage.features)
    assert batch.ok and len(batch.frame) == 40
    model = t.registry.load_model(t.second)
    expected = model.predict_proba(t.frame.iloc[:40][t.features])
    np.testing.assert_allclose(model.predict_proba(batch.frame), expected, rtol=0, atol=1e-12)
