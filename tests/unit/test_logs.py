"""Docker json-file logs (berth.runtime.logs): times, reading, rotation, filters, tail, follow."""
from __future__ import annotations

import asyncio
import json
import os
import re
import time
from datetime import datetime, timezone

import pytest

from berth.runtime.logs import LogEntry, LogQuery, follow, now_rfc3339, parse_time, read_entries

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp()


# -- times -------------------------------------------------------------------------------------

@pytest.mark.parametrize("s, expected", [
    ("2024-01-02T03:04:05Z", T0),
    ("2024-01-02T03:04:05.123456789Z", T0 + 0.123456789),
    ("2024-01-02T03:04:05.000000001Z", T0 + 1e-9),
    ("2024-01-02T03:04:05.5Z", T0 + 0.5),
    ("2024-01-02T03:04:05.12Z", T0 + 0.12),
    ("2024-01-02T04:04:05+01:00", T0),
    ("2024-01-02T04:04:05.25+01:00", T0 + 0.25),
    ("2024-01-01T22:04:05.123456789-05:00", T0 + 0.123456789),
    ("2024-01-02T03:04:05+00:00", T0),
    ("2024-01-02T08:49:05+05:45", T0),
])
def test_parse_time(s, expected):
    assert parse_time(s) == pytest.approx(expected, abs=1e-6)


def test_parse_time_nanosecond_ordering():
    a = parse_time("2024-01-02T03:04:05.100000000Z")
    b = parse_time("2024-01-02T03:04:05.100001000Z")
    assert a < b


def test_parse_time_zero_and_empty():
    assert parse_time("0001-01-01T00:00:00Z") == 0.0
    assert parse_time("") == 0.0


def test_now_rfc3339_format():
    before = time.time()
    s = now_rfc3339()
    after = time.time()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", s), s  # Go trims trailing zeros
    assert before - 1e-3 <= parse_time(s) <= after + 1e-3


def test_now_rfc3339_roundtrip_is_utc():
    s = now_rfc3339()
    dt = datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    assert abs(dt.timestamp() - time.time()) < 5


def test_log_entry_timestamp():
    e = LogEntry("stdout", b"x\n", "2024-01-02T03:04:05.5Z")
    assert e.timestamp == pytest.approx(T0 + 0.5)


# -- reading -------------------------------------------------------------------------------------

def ts(i: int) -> str:
    return datetime.fromtimestamp(T0 + i, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{i:09d}Z"


def line(text: str, stream: str = "stdout", i: int = 0) -> str:
    return json.dumps({"log": text, "stream": stream, "time": ts(i)}) + "\n"


def write(path, *lines: str) -> None:
    with open(path, "a") as f:
        f.write("".join(lines))


def logs(path, **kw) -> list[tuple[str, bytes]]:
    return [(e.stream, e.data) for e in read_entries(str(path), LogQuery(**kw))]


@pytest.fixture
def log(tmp_path):
    return tmp_path / "c-json.log"


def test_read_simple(log):
    write(log, line("one\n", "stdout", 1), line("two\n", "stderr", 2), line("three\n", "stdout", 3))
    assert logs(log) == [("stdout", b"one\n"), ("stderr", b"two\n"), ("stdout", b"three\n")]


def test_read_entry_fields(log):
    write(log, line("hi\n", "stderr", 7))
    [e] = list(read_entries(str(log), LogQuery()))
    assert e == LogEntry("stderr", b"hi\n", ts(7))


def test_read_missing_file(tmp_path):
    assert logs(tmp_path / "nope.log") == []


def test_read_empty_file(log):
    log.write_text("")
    assert logs(log) == []


def test_partial_line_without_newline_in_log(log):
    write(log, line("no newline", "stdout", 1))
    assert logs(log) == [("stdout", b"no newline")]


def test_unicode_and_escapes(log):
    write(log, line("h\u00e9llo \u2603\t\"q\"\n", "stdout", 1))
    assert logs(log) == [("stdout", "h\u00e9llo \u2603\t\"q\"\n".encode())]


def test_rotated_files_read_oldest_first(log):
    write(f"{log}.2", line("a\n", i=1), line("b\n", i=2))
    write(f"{log}.1", line("c\n", i=3))
    write(log, line("d\n", i=4), line("e\n", i=5))
    assert [d for _, d in logs(log)] == [b"a\n", b"b\n", b"c\n", b"d\n", b"e\n"]


def test_rotated_files_without_live_file(log):
    write(f"{log}.1", line("c\n", i=3))
    assert [d for _, d in logs(log)] == [b"c\n"]


def test_stream_filters(log):
    write(log, line("o1\n", "stdout", 1), line("e1\n", "stderr", 2), line("o2\n", "stdout", 3))
    assert logs(log, stderr=False) == [("stdout", b"o1\n"), ("stdout", b"o2\n")]
    assert logs(log, stdout=False) == [("stderr", b"e1\n")]
    assert logs(log, stdout=False, stderr=False) == []


def test_since_until(log):
    write(log, *(line(f"{i}\n", i=i) for i in range(1, 6)))
    assert [d for _, d in logs(log, since=T0 + 3)] == [b"3\n", b"4\n", b"5\n"]
    assert [d for _, d in logs(log, until=T0 + 2.5)] == [b"1\n", b"2\n"]
    assert [d for _, d in logs(log, since=T0 + 2, until=T0 + 4)] == [b"2\n", b"3\n", b"4\n"]
    assert logs(log, since=T0 + 100) == []


def test_since_with_nanosecond_precision(log):
    write(log, line("a\n", i=1), line("b\n", i=2))
    # ts(2) is T0+2 plus 2ns; a since exactly at T0+2 still includes it.
    assert [d for _, d in logs(log, since=T0 + 2)] == [b"b\n"]


@pytest.mark.parametrize("tail, expected", [
    (0, []),
    (1, [b"5\n"]),
    (2, [b"4\n", b"5\n"]),
    (5, [b"1\n", b"2\n", b"3\n", b"4\n", b"5\n"]),
    (100, [b"1\n", b"2\n", b"3\n", b"4\n", b"5\n"]),
    (-1, [b"1\n", b"2\n", b"3\n", b"4\n", b"5\n"]),
])
def test_tail(log, tail, expected):
    write(log, *(line(f"{i}\n", i=i) for i in range(1, 6)))
    assert [d for _, d in logs(log, tail=tail)] == expected


def test_tail_spans_rotated_files(log):
    write(f"{log}.1", line("a\n", i=1), line("b\n", i=2))
    write(log, line("c\n", i=3))
    assert [d for _, d in logs(log, tail=2)] == [b"b\n", b"c\n"]


def test_tail_counts_both_streams_before_stream_filter(log):
    # Docker applies tail to the log file (both streams) and only then drops the
    # unwanted stream (daemon/server/httputils/logstream): the last line here is stderr.
    write(log, line("o1\n", "stdout", 1), line("o2\n", "stdout", 2), line("e1\n", "stderr", 3))
    assert logs(log, tail=1, stderr=False) == []
    assert logs(log, tail=2, stderr=False) == [("stdout", b"o2\n")]


def test_tail_is_taken_before_until(log):
    # Docker: the last N lines are read first, then since/until apply to them.
    write(log, *(line(f"{i}\n", i=i) for i in range(1, 6)))
    assert logs(log, tail=2, until=T0 + 2.5) == []


def test_malformed_lines_skipped(log):
    write(log, line("a\n", i=1), "not json\n", "\n", line("b\n", i=2))
    assert [d for _, d in logs(log)] == [b"a\n", b"b\n"]


# -- follow -----------------------------------------------------------------------------------------

async def _collect(path, q: LogQuery, running, timeout: float = 5.0) -> list[LogEntry]:
    out = []

    async def run():
        async for e in follow(str(path), q, running, poll=0.01):
            out.append(e)

    await asyncio.wait_for(run(), timeout)
    return out


def test_follow_picks_up_appended_lines_and_stops(log):
    write(log, line("old\n", i=1))
    state = {"alive": True}

    async def main():
        async def writer():
            await asyncio.sleep(0.05)
            write(log, line("new1\n", i=2))
            await asyncio.sleep(0.05)
            write(log, line("new2\n", "stderr", 3))
            await asyncio.sleep(0.05)
            state["alive"] = False

        task = asyncio.create_task(writer())
        got = await _collect(log, LogQuery(follow=True), lambda: state["alive"])
        await task
        return got

    got = asyncio.run(main())
    assert [(e.stream, e.data) for e in got] == [("stdout", b"new1\n"), ("stderr", b"new2\n")]


def test_follow_drains_lines_written_just_before_stop(log):
    log.write_text("")
    state = {"alive": True}

    async def main():
        async def writer():
            await asyncio.sleep(0.05)
            write(log, line("last\n", i=2))
            state["alive"] = False

        task = asyncio.create_task(writer())
        got = await _collect(log, LogQuery(follow=True), lambda: state["alive"])
        await task
        return got

    got = asyncio.run(main())
    assert [e.data for e in got] == [b"last\n"]


def test_follow_stops_immediately_when_not_running(log):
    write(log, line("old\n", i=1))
    got = asyncio.run(_collect(log, LogQuery(follow=True), lambda: False, timeout=2))
    assert got == []


def test_follow_joins_split_writes(log):
    log.write_text("")
    state = {"alive": True}
    full = line("split\n", i=2)

    async def main():
        async def writer():
            await asyncio.sleep(0.03)
            write(log, full[:10])
            await asyncio.sleep(0.05)
            write(log, full[10:])
            await asyncio.sleep(0.05)
            state["alive"] = False

        task = asyncio.create_task(writer())
        got = await _collect(log, LogQuery(follow=True), lambda: state["alive"])
        await task
        return got

    assert [e.data for e in asyncio.run(main())] == [b"split\n"]


def test_follow_applies_stream_filter(log):
    log.write_text("")
    state = {"alive": True}

    async def main():
        async def writer():
            await asyncio.sleep(0.03)
            write(log, line("o\n", "stdout", 1), line("e\n", "stderr", 2))
            await asyncio.sleep(0.05)
            state["alive"] = False

        task = asyncio.create_task(writer())
        got = await _collect(log, LogQuery(stdout=False, follow=True), lambda: state["alive"])
        await task
        return got

    assert [(e.stream, e.data) for e in asyncio.run(main())] == [("stderr", b"e\n")]


def test_follow_file_created_later(tmp_path):
    path = tmp_path / "late.log"
    state = {"alive": True}

    async def main():
        async def writer():
            await asyncio.sleep(0.05)
            write(path, line("born\n", i=1))
            await asyncio.sleep(0.05)
            state["alive"] = False

        task = asyncio.create_task(writer())
        got = await _collect(path, LogQuery(follow=True), lambda: state["alive"])
        await task
        return got

    assert [e.data for e in asyncio.run(main())] == [b"born\n"]


def test_follow_across_rotation(log):
    write(log, line("old\n", i=1))
    state = {"alive": True}

    async def main():
        async def writer():
            await asyncio.sleep(0.05)
            write(log, line("before-rotate\n", i=2))
            await asyncio.sleep(0.2)
            os.rename(log, f"{log}.1")
            write(log, line("after-rotate\n", i=3))
            await asyncio.sleep(0.05)
            state["alive"] = False

        task = asyncio.create_task(writer())
        got = await _collect(log, LogQuery(follow=True), lambda: state["alive"])
        await task
        return got

    assert [e.data for e in asyncio.run(main())] == [b"before-rotate\n", b"after-rotate\n"]


def test_follow_keeps_what_was_written_before_the_file_was_removed(log):
    """docker-py's run(remove=True) reads the followed logs after the container (and its log) is deleted."""
    from berth.runtime.logs import open_live
    write(log, line("old\n", "stdout", 1))
    live = open_live(str(log))
    assert [e.data for e in read_entries(str(log), LogQuery(follow=True), live)] == [b"old\n"]
    write(log, line("hi\n", "stdout", 2))
    os.unlink(log)  # the container is removed before the follower polls

    async def collect():
        return [e.data async for e in follow(str(log), LogQuery(follow=True), lambda: False, poll=0.01, live=live)]
    assert asyncio.run(collect()) == [b"hi\n"]
