"""Bounded JSON input (auditinf.jsonin): the depth scan against its character-by-character
definition, and the checks made while parsing (non-finite numbers, lone surrogates)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditinf.errors import InputError
from auditinf.jsonin import MAX_DEPTH, check_depth, load_json


def depth_by_definition(text: str) -> int:
    """The deepest bracket nesting outside string literals, one character at a time."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet='[]{}"\\a,:', max_size=120), st.integers(min_value=0, max_value=8))
def test_depth_scan_matches_its_definition(text, limit):
    refused = False
    try:
        check_depth(text, limit)
    except InputError as exc:
        assert exc.code == "invalid_json"
        refused = True
    assert refused == (depth_by_definition(text) > limit)


def test_brackets_inside_strings_and_escaped_quotes_do_not_count():
    deep = "[" * (MAX_DEPTH + 1)
    assert load_json(json.dumps({"s": deep + '\\"' + deep})) == {"s": deep + '\\"' + deep}
    with pytest.raises(InputError, match="deeper"):
        load_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    with pytest.raises(InputError, match="deeper"):
        load_json('["a\\\\"' + ", [" * MAX_DEPTH + "]" * (MAX_DEPTH + 1))  # the escaped backslash ends no string


@pytest.mark.parametrize("raw", [b'{"x": 1e400}', b'[-1e999]', b'{"x": NaN}', b'[Infinity]'])
def test_non_finite_numbers_are_not_json(raw):
    with pytest.raises(InputError) as exc:
        load_json(raw)
    assert exc.value.code == "invalid_json"


@pytest.mark.parametrize("raw", [b'{"s": "\\ud800"}', b'{"\\udfff": 1}', b'[["ok", "\\uDC00x"]]', '["\ud800"]'])
def test_lone_surrogates_are_refused_from_escapes_or_a_str(raw):
    with pytest.raises(InputError, match="surrogate"):
        load_json(raw)


def test_a_surrogate_pair_escape_and_plain_text_are_fine():
    assert load_json(b'{"s": "\\ud83d\\ude00", "t": "\xc3\xa9", "n": 1.5e3}') == {"s": "\U0001F600", "t": "é", "n": 1500.0}
