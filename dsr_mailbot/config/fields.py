"""The building blocks of the configuration's models: strict scalar types, anchored paths, secrets, key problems.

TOML already gives typed values, so the scalars are strict: ``port = "25"``
or ``port = true`` is a mistake to name, not a value to coerce.  Relative
paths are anchored at the configuration file's directory (the validation
context's ``base_dir``), so a configuration works the same from cron and
from a shell.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationInfo


class KeyProblem(ValueError):
    """A value that passed its type but not the configuration's rules; ``key`` names it within its table."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class Section(BaseModel):
    """A table of the configuration: read-only once loaded, and every key it does not declare is a mistake."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


Int = Annotated[int, Strict()]
NonNegative = Annotated[int, Strict(), Field(ge=0)]
Positive = Annotated[int, Strict(), Field(ge=1)]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]


def _filled(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        raise KeyProblem(None, "must not be empty")
    return value


Filled = Annotated[str, Strict(), BeforeValidator(_filled)]


def base_dir(info: ValidationInfo) -> Path | None:
    context = info.context
    return context.get("base_dir") if isinstance(context, dict) else None


def _anchored(value: object, info: ValidationInfo) -> Path:
    if isinstance(value, Path):
        path = value
    elif isinstance(value, str) and value.strip():
        path = Path(value).expanduser()
    else:
        raise KeyProblem(None, f"expected a path, got {value!r}")
    anchor = base_dir(info)
    return anchor / path if anchor is not None else path


# A path in the file: relative to the configuration file's directory.
ConfigPath = Annotated[Path, BeforeValidator(_anchored)]


def _string_list(value: object) -> object:
    if not isinstance(value, list | tuple) or not value or \
            not all(isinstance(item, str) and item.strip() for item in value):
        raise KeyProblem(None, "expected a non-empty list of strings")
    return tuple(value)


StringList = Annotated[tuple[str, ...], BeforeValidator(_string_list)]


def resolve_secret(data: Any, key: str, info: ValidationInfo, *, required: bool) -> Any:
    """Replace ``key``, ``key_file`` or ``key_env`` (exactly one of them) by the secret itself, under ``key``.

    Read here once; the message of a mistake names the key, never the value.
    """
    if not isinstance(data, dict):
        return data
    names = (key, f"{key}_file", f"{key}_env")
    given = [name for name in names if name in data]
    if len(given) > 1:
        raise KeyProblem(key, f"give only one of {', '.join(given)}")
    rest = {name: value for name, value in data.items() if name not in names}
    if not given:
        if required:
            raise KeyProblem(key, f"missing (or {key}_file / {key}_env)")
        return rest
    chosen = given[0]
    value = data[chosen]
    if not isinstance(value, str) or not value:
        raise KeyProblem(chosen, "expected a non-empty string")
    if chosen.endswith("_file"):
        anchor = base_dir(info)
        secret_path = (anchor / Path(value).expanduser()) if anchor is not None else Path(value)
        try:
            value = secret_path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KeyProblem(chosen, f"cannot read {secret_path} ({exc.strerror})") from exc
    elif chosen.endswith("_env"):
        if value not in os.environ:
            raise KeyProblem(chosen, f"environment variable {value} is not set")
        value = os.environ[value]
    return {**rest, key: value}


def listen_address(value: object) -> tuple[str, int]:
    """``"host:port"`` (IPv6 in brackets) as a pair."""
    if isinstance(value, tuple):
        return value
    text = value if isinstance(value, str) else ""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise KeyProblem(None, f"expected host:port, like \"127.0.0.1:8080\", got {value!r}")
    return host.strip("[]"), int(port)


Listen = Annotated[tuple[str, int], BeforeValidator(listen_address)]


def _anchored_url(url: str, info: ValidationInfo) -> str:
    """A relative SQLite path made relative to the config file, not to the working directory."""
    prefix, anchor = "sqlite:///", base_dir(info)
    if anchor is not None and url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(anchor / url[len(prefix):])
    return url


# A database URL in the file (the store's, a system's): a relative SQLite path is relative to the file.
DatabaseUrl = Annotated[str, Strict(), AfterValidator(_anchored_url)]
