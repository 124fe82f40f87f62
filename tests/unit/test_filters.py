"""Docker list filters (berth.types.filters), as moby's api/types/filters defines them."""
from __future__ import annotations

import json

import pytest

from berth.errors import InvalidArgument
from berth.types.filters import boolean, match_labels, parse

ALLOWED = {"label", "dangling", "name", "until"}


# -- parse ----------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [None, ""])
def test_parse_nothing_is_no_filters(raw):
    assert parse(raw, ALLOWED) == {}


def test_parse_empty_object():
    assert parse("{}", ALLOWED) == {}


def test_parse_map_form():
    raw = json.dumps({"label": {"a=b": True, "c": True}, "dangling": {"true": True}})
    f = parse(raw, ALLOWED)
    assert sorted(f["label"]) == ["a=b", "c"]
    assert f["dangling"] == ["true"]
    assert set(f) == {"label", "dangling"}


def test_parse_legacy_list_form():
    raw = json.dumps({"label": ["a=b", "c"], "name": ["web"]})
    f = parse(raw, ALLOWED)
    assert sorted(f["label"]) == ["a=b", "c"]
    assert f["name"] == ["web"]


def test_both_forms_agree():
    assert parse('{"label":{"x=1":true}}', ALLOWED) == parse('{"label":["x=1"]}', ALLOWED)


def test_parse_keeps_empty_value_set():
    # A key with no values is still present (Contains is true); matching then filters nothing.
    f = parse('{"label":{}}', ALLOWED)
    assert "label" in f and f["label"] == []


def test_parse_map_value_false_still_counts():
    # moby's Args.Get returns every key of the value map, whatever its boolean.
    f = parse('{"label":{"a=b":false}}', ALLOWED)
    assert f["label"] == ["a=b"]


@pytest.mark.parametrize("raw", [
    "not json",
    "{",
    '{"label":',
    "[]",
    '["label"]',
    '"label"',
    "42",
    '{"label":"a=b"}',
    '{"label":42}',
    '{"label":true}',
])
def test_parse_invalid_json_or_shape(raw):
    with pytest.raises(InvalidArgument):
        parse(raw, ALLOWED)


def test_parse_unknown_key():
    with pytest.raises(InvalidArgument) as e:
        parse('{"bogus":{"x":true}}', ALLOWED)
    assert e.value.message == "invalid filter 'bogus'"


def test_parse_unknown_key_in_list_form():
    with pytest.raises(InvalidArgument):
        parse('{"bogus":["x"]}', ALLOWED)


def test_parse_invalid_json_is_400():
    with pytest.raises(InvalidArgument) as e:
        parse("{oops", ALLOWED)
    assert e.value.status == 400
    assert "invalid filter" in e.value.message.lower()


# -- match_labels ------------------------------------------------------------------------

LABELS = {"app": "web", "tier": "front", "empty": ""}


@pytest.mark.parametrize("wanted, expected", [
    ([], True),
    (["app"], True),
    (["nope"], False),
    (["app=web"], True),
    (["app=db"], False),
    (["app", "tier=front"], True),
    (["app", "tier=back"], False),
    (["empty"], True),
    (["empty="], True),
    (["app="], False),
    (["nope=x"], False),
    (["app!=db"], True),
    (["app!=web"], False),
    (["app=web", "tier!=back"], True),
    (["app=web", "tier!=front"], False),
])
def test_match_labels(wanted, expected):
    assert match_labels(wanted, LABELS) is expected


def test_match_labels_value_with_equals_sign():
    assert match_labels(["url=a=b"], {"url": "a=b"}) is True
    assert match_labels(["url=a"], {"url": "a=b"}) is False


def test_match_labels_no_labels():
    assert match_labels([], {}) is True
    assert match_labels(["app"], {}) is False
    assert match_labels(["app=web"], {}) is False


# -- boolean -----------------------------------------------------------------------------

@pytest.mark.parametrize("values, expected", [
    (["true"], True),
    (["1"], True),
    (["false"], False),
    (["0"], False),
    (["true", "1"], True),
    (["false", "0"], False),
])
def test_boolean(values, expected):
    assert boolean(values, "dangling") is expected


@pytest.mark.parametrize("values", [["maybe"], ["yes"], [""]])
def test_boolean_invalid(values):
    with pytest.raises(InvalidArgument) as e:
        boolean(values, "dangling")
    assert e.value.message == f"invalid filter 'dangling=[{' '.join(values)}]'"


def test_boolean_no_values_is_invalid_filter():
    # moby GetBoolOrDefault: a key with an empty value set is an invalidFilter error.
    with pytest.raises(InvalidArgument):
        boolean([], "dangling")


def test_boolean_conflicting_values_rejected():
    # moby GetBoolOrDefault: both a truthy and a falsy value is an invalidFilter error.
    with pytest.raises(InvalidArgument):
        boolean(["true", "false"], "dangling")
    with pytest.raises(InvalidArgument):
        boolean(["0", "1"], "dangling")
