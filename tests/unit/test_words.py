"""Docker's shell-word lexer and build-arg scoping (berth.build.words)."""
from __future__ import annotations

import pytest

from berth.build.words import BuildArgs, process, process_word, process_words, unused_args_warning, used_vars
from berth.errors import InvalidArgument

ENV = {"PWD": "/home", "SHELL": "bash", "NULL": "", "K": "한국어", "P": "80 443",
       "PATH": "/usr/local/bin:/usr/bin:/bin", "X": "a*b"}


@pytest.mark.parametrize("word, out", [
    ("hello", "hello"),
    ("he'll'o", "hello"),
    ("he'llo'", "hello"),
    ('he"ll"o', "hello"),
    ("he\\'llo", "he'llo"),
    ('"hello\\""', 'hello"'),
    ("'hello\\'", "hello\\"),
    ('"a\\b"', "a\\b"),            # inside "", \ only escapes " $ and \
    ('"a\\\\b"', "a\\b"),
    ("a\\ b", "a b"),
    ("$PWD", "/home"),
    ("${PWD}", "/home"),
    ("he$PWD", "he/home"),
    ("he${PWD}x", "he/homex"),
    ("'$PWD'", "$PWD"),             # no expansion in single quotes
    ('"$PWD"', "/home"),
    ("\\$PWD", "$PWD"),
    ('"\\$PWD"', "$PWD"),
    ("$XXX", ""),
    ("he${XXX}x", "hex"),
    ("$", "$"),
    ("a$ b", "a$ b"),
    ("$1x", "x"),                   # positional parameter: unset
    ("${XXX:-000}", "000"),
    ("${PWD:-000}", "/home"),
    ("${NULL:-000}", "000"),
    ("${NULL-000}", ""),
    ("${XXX-000}", "000"),
    ("${XXX:+000}", ""),
    ("${PWD:+000}", "000"),
    ("${NULL:+000}", ""),
    ("${NULL+000}", "000"),
    ("${PWD:?}", "/home"),
    ("${NULL?}", ""),
    ("${XXX:-$PWD}", "/home"),
    ("${XXX:-${SHELL}x}", "bashx"),
    ('${XXX:-"a b"}', "a b"),
    ("${K}", "한국어"),
    ("${PATH#*:}", "/usr/bin:/bin"),
    ("${PATH##*:}", "/bin"),
    ("${PATH%:*}", "/usr/local/bin:/usr/bin"),
    ("${PATH%%:*}", "/usr/local/bin"),
    ("${PATH/bin/X}", "/usr/local/X:/usr/bin:/bin"),
    ("${PATH//bin/X}", "/usr/local/X:/usr/X:/X"),
    ("${X#a\\*}", "b"),
    ("${PATH/#/}", "/usr/local/bin:/usr/bin:/bin"),
])
def test_process_word(word, out):
    assert process_word(word, ENV) == out


@pytest.mark.parametrize("word, msg", [
    ("he'llo", "unexpected end of statement while looking for matching single-quote"),
    ('"hello', "unexpected end of statement while looking for matching double-quote"),
    ("${}", "syntax error: bad substitution"),
    ("${:-a}", "syntax error: bad substitution"),
    ("${{a}", "syntax error: bad substitution"),
    ("${PWD", "syntax error: missing '}'"),
    ("${PWD:-a", "syntax error: missing '}'"),
    ("${PWD:=000}", "unsupported modifier (:=) in substitution"),
    ("${PWD:#x}", "unsupported modifier (:#) in substitution"),
    ("${P x}", "unsupported modifier ( ) in substitution"),
    ("${XXX:?}", "XXX: is not allowed to be unset"),
    ("${XXX?}", "XXX: is not allowed to be unset"),
    ("${NULL:?}", "NULL: is not allowed to be empty"),
    ("${XXX:?set it}", "XXX: set it"),
    ("${PWD#\\x}", "invalid pattern (\\x) in substitution: invalid escape '\\x'"),
])
def test_process_word_errors(word, msg):
    with pytest.raises(InvalidArgument) as e:
        process_word(word, ENV)
    assert e.value.message == f"failed to process {_q(word)}: {msg}"


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_mandatory_message_is_expanded():
    with pytest.raises(InvalidArgument, match="VAR: message herex"):
        process_word("${VAR:?message here$ARG}", {"ARG": "x", "VAR": ""})
    assert process_word("${VAR?message}", {"VAR": ""}) == ""


@pytest.mark.parametrize("word, env, words", [
    ("hello", {}, ["hello"]),
    ("hello there     ", {}, ["hello", "there"]),
    ("hello${space}bye", {"space": "abc  def"}, ["helloabc", "defbye"]),
    ('hello"${space}"bye', {"space": "abc  def"}, ["helloabc  defbye"]),
    ("hello ${leading}def", {"leading": "  ab c"}, ["hello", "ab", "cdef"]),
    ("hello${trailing}d", {"trailing": "ab c   "}, ["helloab", "c", "d"]),
    ("hello\\ there", {}, ["hello there"]),
    ('hello\\" there', {}, ['hello"', "there"]),
    ("hello'$there'", {}, ["hello$there"]),
    ("$P 8080/udp", ENV, ["80", "443", "8080/udp"]),
    ("", {}, []),
])
def test_process_words(word, env, words):
    assert process_words(word, env) == words


def test_backtick_escape():
    env = {"A": "x"}
    assert process_word("a`$A", env, "`") == "a$A"
    assert process_word("c:\\dir\\$A", env, "`") == "c:\\dir\\x"
    assert process_word('"`"q`""', env, "`") == '"q"'
    assert process_word("a\\ b", env, "\\") == "a b"


def test_options_raw_quotes_skip_unset():
    p = process("'a' \"$X\" $Y ${Z:-d}", {"X": "1"}, raw_quotes=True, skip_unset=True)
    assert p.result == "'a' \"1\" $Y ${Z:-d}"
    assert p.matched == {"X"} and p.unmatched == {"Y", "Z"}
    # BuildKit's heredoc-content expansion keeps quotes
    assert process("echo \"$X\" '$X'", {"X": "1"}, skip_quotes=True).result == "echo \"1\" '1'"


def test_used_vars():
    assert used_vars("$A${B}c") == {"A", "B"}
    assert used_vars("${A:-$B}") == {"A", "B"}
    assert used_vars("${A:+${C}}x${D:?oops}") == {"A", "C", "D"}
    assert used_vars("'$A'\\$B") == set()
    assert used_vars('"$A"') == {"A"}
    assert used_vars("`$A", "`") == set()
    with pytest.raises(InvalidArgument):
        used_vars("${A")


# ------------------------------------------------------------------ build args

def test_meta_args_and_stage_scope():
    ba = BuildArgs({"VERSION": "2", "HTTP_PROXY": "http://p", "UNUSED": "x", "EMPTY": None})
    ba.process_meta_arg([("VERSION", "1")])
    ba.process_meta_arg([("IMG", "busybox:${VERSION}")])
    assert ba.all_meta() == {"VERSION": "2", "IMG": "busybox:2", "HTTP_PROXY": "http://p"}
    stage = ba.for_stage()
    assert stage.all_allowed() == {"HTTP_PROXY": "http://p"}  # globals need a re-declaration
    stage.add_arg("VERSION", None)  # ARG VERSION: takes the global's (or --build-arg) value
    stage.add_arg("LOCAL", "l")
    assert stage.all_allowed() == {"VERSION": "2", "LOCAL": "l", "HTTP_PROXY": "http://p"}
    # an ENV of the same name hides the arg from RUN
    assert stage.filter_allowed(["LOCAL=env", "PATH=/bin"]) == ["HTTP_PROXY=http://p", "VERSION=2"]
    # history/cache key: proxy args left out unless declared
    assert stage.saved_args(["PATH=/bin"]) == ["LOCAL=l", "VERSION=2"]
    ba.merge_referenced(stage)
    assert ba.unused() == ["EMPTY", "UNUSED"]
    assert unused_args_warning(ba.unused()) == "[Warning] One or more build-args [EMPTY UNUSED] were not consumed\n"


def test_saved_args_none_and_proxy_only():
    ba = BuildArgs({}).for_stage()
    assert ba.saved_args([]) is None
    proxy = BuildArgs({"http_proxy": "p"}).for_stage()
    assert proxy.saved_args([]) == []  # "|0 /bin/sh -c ..." in the classic builder
    proxy.add_arg("http_proxy", None)
    assert proxy.saved_args([]) == ["http_proxy=p"]


def test_one_arg_instruction_expands_before_declaring():
    ba = BuildArgs({})
    ba.process_meta_arg([("V", "1"), ("IMG", "busybox:${V}")])  # ARG V=1 IMG=busybox:${V}
    assert ba.all_meta() == {"V": "1", "IMG": "busybox:"}


def test_arg_default_without_value_and_meta_fallback():
    ba = BuildArgs({})
    ba.process_meta_arg([("A", None), ("B", "b")])
    s = ba.for_stage()
    s.add_arg("A", None)
    s.add_arg("B", None)
    assert s.all_allowed() == {"B": "b"}
