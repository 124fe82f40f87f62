"""`.env` / env_file parsing as Docker Compose v2 does."""
from __future__ import annotations

import pytest

from berth.compose import envfile
from berth.errors import InvalidArgument


def test_basic_forms():
    text = (
        "# a comment\n"
        "\n"
        "A=1\n"
        "export B=two\n"
        "  C = spaced  \n"
        "EMPTY=\n"
        "INLINE=value # trailing comment\n"
        "HASH=a#b\n"
        "EQ=a=b\n"
    )
    assert envfile.parse(text) == {"A": "1", "B": "two", "C": "spaced", "EMPTY": "", "INLINE": "value",
                                   "HASH": "a#b", "EQ": "a=b"}


def test_quotes():
    text = (
        "S='literal $A \\n # not a comment'\n"
        'D="tab\\there\\nnew \\"q\\" back\\\\slash"\n'
        'ML="line1\nline2"\n'
        "SML='a\nb'\n"
        'AFTER=x\n'
    )
    env = envfile.parse(text)
    assert env["S"] == "literal $A \\n # not a comment"
    assert env["D"] == 'tab\there\nnew "q" back\\slash'
    assert env["ML"] == "line1\nline2"
    assert env["SML"] == "a\nb"
    assert env["AFTER"] == "x"


def test_interpolation_from_earlier_lines_and_environment():
    text = "A=1\nB=${A}-$HOSTVAR\nC=\"${A}x\"\nD='${A}'\nE=${NOPE:-dflt}\nF=\"\\$A\"\n"
    env = envfile.parse(text, {"HOSTVAR": "h"})
    assert env == {"A": "1", "B": "1-h", "C": "1x", "D": "${A}", "E": "dflt", "F": "$A"}


def test_environment_wins_over_earlier_lines_in_lookup():
    assert envfile.parse("A=file\nB=$A\n", {"A": "os"})["B"] == "os"


def test_key_alone_taken_from_environment_or_left_out():
    env = envfile.parse("HOME\nMISSING\n", {"HOME": "/root"})
    assert env == {"HOME": "/root"}


def test_bad_key_is_an_error_with_line():
    with pytest.raises(InvalidArgument, match=r"x.env:2: unexpected character"):
        envfile.parse("A=1\nBAD KEY=2\n", path="x.env")


def test_unterminated_quote():
    with pytest.raises(InvalidArgument, match="unterminated"):
        envfile.parse('A="never closed\n', path="x.env")


def test_read_required_and_optional(tmp_path):
    p = tmp_path / "e.env"
    p.write_text("\ufeffA=1\r\nB=2\r\n")
    assert envfile.read(str(p)) == {"A": "1", "B": "2"}
    assert envfile.read(str(tmp_path / "nope"), required=False) == {}
    with pytest.raises(InvalidArgument, match="not found"):
        envfile.read(str(tmp_path / "nope"))


def test_read_all_later_wins_and_sees_earlier(tmp_path):
    (tmp_path / "a").write_text("A=1\nB=1\n")
    (tmp_path / "b").write_text("B=${A}2\n")
    assert envfile.read_all([str(tmp_path / "a"), str(tmp_path / "b")]) == {"A": "1", "B": "12"}
