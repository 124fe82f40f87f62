"""Docker's multiplexed stream framing (berth.runtime.stdio)."""
from __future__ import annotations

import struct

import pytest

from berth.runtime.stdio import STDERR, STDIN, STDOUT, frame, parse_frames


def test_stream_numbers():
    assert (STDIN, STDOUT, STDERR) == (0, 1, 2)


def test_frame_header_layout():
    assert frame(STDOUT, b"hi") == b"\x01\x00\x00\x00\x00\x00\x00\x02hi"
    assert frame(STDERR, b"oops\n") == b"\x02\x00\x00\x00\x00\x00\x00\x05oops\n"
    assert frame(STDIN, b"") == b"\x00" * 8


def test_frame_size_is_big_endian_uint32():
    data = b"x" * 0x010203
    out = frame(STDOUT, data)
    assert out[:8] == b"\x01\x00\x00\x00\x00\x01\x02\x03"
    assert out[8:] == data
    assert struct.unpack(">I", out[4:8])[0] == len(data)


def test_parse_single_frame():
    assert parse_frames(frame(STDOUT, b"hello")) == ([(STDOUT, b"hello")], b"")


def test_parse_several_frames():
    buf = frame(STDOUT, b"a") + frame(STDERR, b"bc") + frame(STDOUT, b"")
    assert parse_frames(buf) == ([(STDOUT, b"a"), (STDERR, b"bc"), (STDOUT, b"")], b"")


def test_parse_empty_buffer():
    assert parse_frames(b"") == ([], b"")


@pytest.mark.parametrize("cut", range(0, 8))
def test_partial_header_is_kept(cut):
    buf = frame(STDOUT, b"payload")[:cut]
    assert parse_frames(buf) == ([], buf)


def test_partial_body_is_kept():
    full = frame(STDERR, b"payload")
    buf = full[:-3]
    assert parse_frames(buf) == ([], buf)


def test_complete_frame_then_partial():
    rest = frame(STDERR, b"second")[:10]
    frames, remainder = parse_frames(frame(STDOUT, b"first") + rest)
    assert frames == [(STDOUT, b"first")]
    assert remainder == rest


def test_byte_by_byte_reassembly():
    stream = frame(STDOUT, b"one") + frame(STDERR, b"") + frame(STDERR, b"two\n" * 50) + frame(STDOUT, b"3")
    got, buf = [], b""
    for i in range(len(stream)):
        buf += stream[i:i + 1]
        frames, buf = parse_frames(buf)
        got += frames
    assert buf == b""
    assert got == [(STDOUT, b"one"), (STDERR, b""), (STDERR, b"two\n" * 50), (STDOUT, b"3")]


def test_binary_payload_roundtrip():
    data = bytes(range(256)) * 4
    assert parse_frames(frame(STDOUT, data)) == ([(STDOUT, data)], b"")


def test_size_field_counts_only_payload():
    # A payload that itself looks like a header must not confuse parsing.
    inner = frame(STDERR, b"zz")
    assert parse_frames(frame(STDOUT, inner)) == ([(STDOUT, inner)], b"")
