"""Compose interpolation: every form, nesting, $$, warnings and errors."""
from __future__ import annotations

import pytest

from berth.compose.interpolate import InvalidTemplate, MissingRequired, interpolate, substitute
from berth.compose.yamlsrc import parse
from berth.errors import InvalidArgument

ENV = {"SET": "val", "EMPTY": "", "B": "bee"}


@pytest.mark.parametrize("text,want", [
    ("plain", "plain"),
    ("$SET", "val"),
    ("${SET}", "val"),
    ("a-${SET}-b", "a-val-b"),
    ("$SET/x", "val/x"),
    ("${UNSET:-def}", "def"),
    ("${EMPTY:-def}", "def"),
    ("${SET:-def}", "val"),
    ("${UNSET-def}", "def"),
    ("${EMPTY-def}", ""),
    ("${SET:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET+alt}", ""),
    ("${UNSET:-${B}}", "bee"),
    ("${UNSET:-${ALSO:-deep}}", "deep"),
    ("${UNSET:-a ${B} c}", "a bee c"),
    ("$$", "$"),
    ("$$SET", "$SET"),
    ("echo $${SET}", "echo ${SET}"),
    ("${SET:?boom}", "val"),
    ("${EMPTY?boom}", ""),
    ("${UNSET:-with:colon}", "with:colon"),
])
def test_substitute_forms(text, want):
    assert substitute(text, ENV) == want


def test_unset_warns_once_and_blanks():
    warnings: list[str] = []
    assert substitute("$NOPE ${NOPE}", ENV, warnings) == " "
    assert warnings == ['The "NOPE" variable is not set. Defaulting to a blank string.']


def test_default_is_lazy_no_warning_for_unused_branch():
    warnings: list[str] = []
    assert substitute("${SET:-${NOPE}}", ENV, warnings) == "val"
    assert warnings == []


@pytest.mark.parametrize("text", ["${UNSET:?need it}", "${EMPTY:?need it}", "${UNSET?need it}"])
def test_required_errors(text):
    with pytest.raises(MissingRequired, match="required variable (UNSET|EMPTY) is missing a value: need it"):
        substitute(text, ENV)


def test_required_question_without_colon_accepts_empty():
    assert substitute("${EMPTY?x}", ENV) == ""


@pytest.mark.parametrize("text", ["$", "a $ b", "${}", "${ SET}", "${SET", "$1", "${SET:x}"])
def test_invalid_templates(text):
    with pytest.raises(InvalidTemplate):
        substitute(text, ENV)


def test_interpolate_tree_values_not_keys():
    doc = parse("services:\n  $SET:\n    image: ${SET}\n    ports: ['${B}']\n    n: 3\n", "/p/c.yaml")
    out = interpolate(doc, ENV, "/p/c.yaml")
    assert out == {"services": {"$SET": {"image": "val", "ports": ["bee"], "n": 3}}}
    # positions survive the copy
    assert out["services"]["$SET"].key_pos["image"] == ("/p/c.yaml", 3, 5)


def test_interpolate_error_names_file_line_and_path():
    doc = parse("services:\n  web:\n    image: ${IMG:?set IMG please}\n", "/p/c.yaml")
    with pytest.raises(InvalidArgument) as e:
        interpolate(doc, ENV, "/p/c.yaml")
    msg = e.value.message
    assert msg.startswith("/p/c.yaml:3:5: ")
    assert "services.web.image" in msg and "required variable IMG is missing a value: set IMG please" in msg


def test_interpolate_invalid_format_message():
    doc = parse("services:\n  web:\n    command: echo $1\n", "/p/c.yaml")
    with pytest.raises(InvalidArgument, match=r'^/p/c.yaml:3:5: invalid interpolation format for '
                                              r'services.web.command: "echo \$1"'):
        interpolate(doc, ENV, "/p/c.yaml")


def test_callable_lookup():
    assert substitute("${X:-d}", lambda k: "x" if k == "X" else None) == "x"
