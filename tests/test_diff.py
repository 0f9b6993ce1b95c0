"""The field-by-field difference of two JSON documents that explains a miss (pure)."""

from __future__ import annotations

from core.cache.request.diff import EXCERPT, MISSING, Difference, differences


def paths(stored: object, requested: object) -> list[str]:
    return [d.path for d in differences(stored, requested)]


def test_equal_documents_have_no_differences() -> None:
    document = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "options": {"temperature": 0}}
    assert differences(document, {**document}) == []
    assert differences({"a": 1}, {"a": 1.0}) == []  # a number is a number


def test_a_changed_leaf_is_named_by_its_path_with_both_values() -> None:
    stored = {
        "messages": [{"role": "system", "content": "a"}, {"role": "user", "content": "b"}],
        "options": {"temperature": 0, "seed": 1},
    }
    requested = {
        "messages": [{"role": "system", "content": "a"}, {"role": "user", "content": "c"}],
        "options": {"temperature": 0.7, "seed": 1},
    }
    assert differences(stored, requested) == [
        Difference("messages[1].content", "b", "c"),
        Difference("options.temperature", 0, 0.7),
    ]


def test_a_member_or_item_on_one_side_only_is_missing_on_the_other() -> None:
    found = differences({"options": {}, "messages": [1]}, {"options": {"top_k": 5}, "messages": [1, 2]})
    assert found == [Difference("messages[1]", MISSING, 2), Difference("options.top_k", MISSING, 5)]
    assert found[1].to_json() == {"path": "options.top_k", "requested": 5}
    assert differences({"think": True}, {})[0].to_json() == {"path": "think", "stored": True}


def test_types_that_differ_are_a_difference_even_when_python_calls_them_equal() -> None:
    assert paths({"raw": True}, {"raw": 1}) == ["raw"]
    assert paths({"format": "json"}, {"format": {"type": "object"}}) == ["format"]
    assert paths([1, 2], {"a": 1}) == ["$"]


def test_keys_that_are_not_plain_names_are_quoted() -> None:
    assert paths({"format": {"a-b": 1}}, {"format": {"a-b": 2}}) == ['format["a-b"]']


def test_a_long_string_is_shown_around_where_it_first_differs() -> None:
    prefix = "You are a helpful assistant. " * 10
    stored = prefix + "The time is 2026-12-02 03:00:01. Answer briefly."
    requested = prefix + "The time is 2026-12-02 03:05:12. Answer briefly." + " Be kind." * 10
    stored += " Be kind." * 10
    (difference,) = differences({"system": stored}, {"system": requested})
    shown = difference.to_json()
    assert shown["path"] == "system" and shown["stored"].startswith("…") and shown["requested"].endswith("…")
    assert shown["stored"].startswith("…") and shown["stored"].endswith("…")
    assert "03:00:01" in shown["stored"] and "03:05:12" in shown["requested"]
    assert len(shown["stored"]) <= 2 * EXCERPT + 2
    assert difference.stored == stored  # the value itself is whole


def test_a_long_value_against_a_missing_one_is_cut() -> None:
    shown = differences({}, {"images": ["x" * 10_000]})[0].to_json()
    assert shown["path"] == "images" and len(shown["requested"][0]) == 10_000  # lists are shown as they are
    shown = differences({}, {"prompt": "x" * 10_000})[0].to_json()
    assert len(shown["requested"]) < 200 and shown["requested"].endswith("…")
