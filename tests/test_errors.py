"""The one exception tree's helper for unexpected errors: name the type and the place, never the text."""

from __future__ import annotations

from dsr_mailbot.errors import where_raised


def _fails_on(value: str) -> None:
    raise ValueError(f"cannot read {value}")


def test_an_unexpected_error_is_named_by_type_and_place_without_its_message() -> None:
    try:
        _fails_on("ivan.petrov@example.ru")
    except ValueError as exc:
        said = where_raised(exc)
    line = _fails_on.__code__.co_firstlineno + 1
    assert said == f"ValueError at test_errors.py:{line}"
    assert where_raised(KeyError("x")) == "KeyError"  # never raised: no place to name
