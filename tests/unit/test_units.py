"""Docker's human formats (berth.types.units)."""
from __future__ import annotations

import datetime as dt

import pytest

from berth.types.units import (
    bytes_size, format_created, format_created_at, go_quote, go_sprintf, go_str, human_duration,
    human_size, parse_go_duration, parse_rfc3339, parse_size, parse_timestamp, status_text,
    to_json,
)

NOW = 1700000000.0  # 2023-11-14T22:13:20Z
ZERO = "0001-01-01T00:00:00Z"


def iso(ts: float, frac: str = "") -> str:
    t = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


@pytest.mark.parametrize("n, text", [
    (0, "0B"), (1, "1B"), (999, "999B"), (1000, "1kB"), (2129920, "2.13MB"),
    (1234567890, "1.235GB"), (10**12, "1TB"), (1.5e15, "1.5PB"), (999999, "1000kB"),
])
def test_human_size(n, text):
    assert human_size(n) == text


@pytest.mark.parametrize("n, text", [
    (0, "0B"), (1023, "1023B"), (1024, "1KiB"), (1536, "1.5KiB"), (1048576, "1MiB"),
    (5 * 2**30, "5GiB"), (2**40, "1TiB"),
])
def test_bytes_size(n, text):
    assert bytes_size(n) == text


@pytest.mark.parametrize("secs, text", [
    (-5, "Less than a second"), (0, "Less than a second"), (0.99, "Less than a second"),
    (1, "1 second"), (1.7, "1 second"), (2, "2 seconds"), (59, "59 seconds"),
    (60, "About a minute"), (119, "About a minute"), (120, "2 minutes"), (3599, "59 minutes"),
    (3600, "About an hour"), (5399, "About an hour"), (5400, "2 hours"), (47 * 3600, "47 hours"),
    (48 * 3600, "2 days"), (13 * 86400, "13 days"), (14 * 86400, "2 weeks"),
    (59 * 86400, "8 weeks"), (60 * 86400, "2 months"), (729 * 86400, "24 months"),
    (730 * 86400, "2 years"), (5 * 365 * 86400, "5 years"),
])
def test_human_duration(secs, text):
    assert human_duration(secs) == text


def test_format_created():
    assert format_created(NOW - 120, NOW) == "2 minutes ago"
    assert format_created(NOW, NOW) == "Less than a second ago"


def test_format_created_at_is_go_time_string(monkeypatch):
    import time
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert format_created_at(NOW) == "2023-11-14 22:13:20 +0000 UTC"
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("text, n", [
    ("100", 100), ("0", 0), ("10m", 10 << 20), ("10M", 10 << 20), ("10MB", 10 << 20),
    ("10mb", 10 << 20), ("10MiB", 10 << 20), ("10 MiB", 10 << 20), ("1g", 1 << 30),
    ("512k", 512 << 10), ("512KB", 512 << 10), ("2b", 2), ("1.5g", 3 << 29), ("1t", 1 << 40),
])
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("bad", ["", "abc", "-1", "10x", "1.2.3m", "m", "10 m b x"])
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(bad)


@pytest.mark.parametrize("text, secs", [
    ("0", 0), ("42s", 42), ("10m", 600), ("1h30m", 5400), ("1.5h", 5400), ("300ms", 0.3),
    ("-2m", -120), ("1h1m1s", 3661), ("1us", 1e-6),
])
def test_parse_go_duration(text, secs):
    assert parse_go_duration(text) == pytest.approx(secs)


@pytest.mark.parametrize("bad", ["", "1", "1x", "h", "1h-", "1.5"])
def test_parse_go_duration_rejects(bad):
    with pytest.raises(ValueError):
        parse_go_duration(bad)


@pytest.mark.parametrize("text, ts", [
    ("10m", NOW - 600), ("1h30m", NOW - 5400), ("42s", NOW - 42), ("1.5h", NOW - 5400),
    ("1700000000.5", 1700000000.5), ("1699999999", 1699999999.0),
    ("2023-11-14T22:13:20Z", NOW), ("2023-11-14T22:13:20.5Z", NOW + 0.5),
    ("2023-11-14T22:13:20.123456789Z", NOW + 0.123456789),
    ("2023-11-14T23:13:20+01:00", NOW), ("2023-11-14T21:13:20-01:00", NOW),
])
def test_parse_timestamp(text, ts):
    assert parse_timestamp(text, NOW) == pytest.approx(ts)


def test_parse_timestamp_without_zone_is_local_time():
    local = dt.datetime(2023, 11, 14, 22, 13, 20).timestamp()
    assert parse_timestamp("2023-11-14T22:13:20", NOW) == local
    assert parse_timestamp("2023-11-14", NOW) == dt.datetime(2023, 11, 14).timestamp()


@pytest.mark.parametrize("bad", ["nope", "2023-13-01", "1h-", "12-34", ""])
def test_parse_timestamp_rejects(bad):
    with pytest.raises(ValueError, match="failed to parse"):
        parse_timestamp(bad, NOW)


def test_parse_rfc3339():
    assert parse_rfc3339(ZERO) is None
    assert parse_rfc3339("") is None and parse_rfc3339(None) is None
    assert parse_rfc3339("2023-11-14T22:13:20.000000001Z") == pytest.approx(NOW, abs=1e-6)
    assert parse_rfc3339("2023-11-14T22:13:20+00:00") == NOW


@pytest.mark.parametrize("state, text", [
    ({"Status": "created", "StartedAt": ZERO, "FinishedAt": ZERO}, "Created"),
    ({"Status": "running", "StartedAt": iso(NOW - 5), "FinishedAt": ZERO}, "Up 5 seconds"),
    ({"Status": "running", "StartedAt": iso(NOW - 1, ".500000001")}, "Up Less than a second"),
    ({"Status": "running", "StartedAt": iso(NOW - 1)}, "Up 1 second"),
    ({"Status": "paused", "StartedAt": iso(NOW - 125), "FinishedAt": ZERO},
     "Up 2 minutes (Paused)"),
    ({"Status": "exited", "StartedAt": iso(NOW - 60), "FinishedAt": iso(NOW - 3), "ExitCode": 0},
     "Exited (0) 3 seconds ago"),
    ({"Status": "exited", "StartedAt": iso(NOW - 9000), "FinishedAt": iso(NOW - 7200),
      "ExitCode": 137}, "Exited (137) 2 hours ago"),
    ({"Status": "restarting", "StartedAt": iso(NOW - 60), "FinishedAt": iso(NOW - 2),
      "ExitCode": 1}, "Restarting (1) 2 seconds ago"),
    ({"Status": "dead", "StartedAt": iso(NOW - 60), "FinishedAt": iso(NOW - 2)}, "Dead"),
    ({"Status": "running", "StartedAt": iso(NOW - 1), "Health": {"Status": "healthy"}},
     "Up 1 second (healthy)"),
    ({"Status": "running", "StartedAt": iso(NOW - 1), "Health": {"Status": "starting"}},
     "Up 1 second (health: starting)"),
    ({"Status": "running", "StartedAt": iso(NOW - 7200), "Health": "unhealthy"},
     "Up 2 hours (unhealthy)"),
    ({"Status": "paused", "StartedAt": iso(NOW - 60), "Health": {"Status": "healthy"}},
     "Up About a minute (Paused)"),
    ({"Status": "exited", "StartedAt": ZERO, "FinishedAt": ZERO, "ExitCode": 127}, "Created"),
    ({"Status": "removing", "StartedAt": ZERO}, "Removal In Progress"),
])
def test_status_text(state, text):
    assert status_text(state, NOW) == text


def test_status_text_nanosecond_timestamps():
    state = {"Status": "exited", "StartedAt": "2023-11-14T22:00:00.123456789Z",
             "FinishedAt": "2023-11-14T22:13:17.987654321Z", "ExitCode": 2}
    assert status_text(state, NOW) == "Exited (2) 2 seconds ago"


# ---------------------------------------------------------------- Go's fmt / json

@pytest.mark.parametrize("value, text", [
    (None, "<no value>"), (True, "true"), (False, "false"), (3, "3"), ("s", "s"),
    (1.0, "1"), (2.5, "2.5"), (1e6, "1e+06"), (123456.0, "123456"), (1234567.0, "1.234567e+06"),
    (0.0001, "0.0001"), (0.00001, "1e-05"), (-2.5, "-2.5"),
    (["a", "b", 1], "[a b 1]"), ([None, True], "[<nil> true]"), ([], "[]"),
    ({"b": 2, "a": "x"}, "map[a:x b:2]"), ({"m": {"k": [1]}}, "map[m:map[k:[1]]]"),
])
def test_go_str(value, text):
    assert go_str(value) == text


@pytest.mark.parametrize("args, text", [
    (("%s-%d", "web", 3), "web-3"), (("%v", [1, "a"]), "[1 a]"), (("%q", 'a"b\n'), '"a\\"b\\n"'),
    (("%5s|%-5s|", "ab", "cd"), "   ab|cd   |"), (("%05d %x %X %o", 42, 255, 255, 8), "00042 ff FF 10"),
    (("%.2f %t %%", 3.14159, True), "3.14 true %"), (("%T %T", "s", 1), "string int"),
    (("%d", "x"), "%!d(string=x)"), (("%s", 5), "%!s(int=5)"), (("%d %d", 1), "1 %!d(MISSING)"),
    (("%d", 1, "x"), "1%!(EXTRA string=x)"), (("%v %s", None, None), "<nil> %!s(<nil>)"),
    (("%g %g", 0.1, 1e7), "0.1 1e+07"), (("%.3s", "abcdef"), "abc"), (("%c", 65), "A"),
])
def test_go_sprintf(args, text):
    assert go_sprintf(*args) == text


def test_go_quote():
    assert go_quote("a\tb\x01é") == '"a\\tb\\x01é"'


def test_to_json_is_go_compact_and_html_safe():
    assert to_json({"b": [1, 2.0, None], "a": "<x&y>"}) == \
        '{"b":[1,2,null],"a":"\\u003cx\\u0026y\\u003e"}'
    assert to_json("é") == '"é"'
    assert to_json({"a": {}}, indent=4) == '{\n    "a": {}\n}'
