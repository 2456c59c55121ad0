"""``[web]``: the operator console's address, the hosts it answers, and who may sign in (Argon2id hashes only)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from dsr_mailbot.config.fields import Filled, KeyProblem, Listen, Section, Str, StringList, listen_address
from dsr_mailbot.config.sections import Language

ARGON2_PREFIX = "$argon2id$"  # what `dsr-mailbot web hash-password` prints
# RFC 9106 §4: the second recommended option (64 MiB, 3 passes) or the first (2 GiB, 1 pass); weaker is refused.
MIN_MEMORY_KIB, MIN_PASSES, FIRST_OPTION_MEMORY_KIB = 64 * 1024, 3, 2 * 1024 * 1024
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class WebOperator(Section):
    """A person who may log in to the operator console: a login, an Argon2 hash, a language."""

    login: Filled
    password_hash: Str = Field(repr=False)
    language: Language = "ru"


class WebConfig(Section):
    """The operator console: where it listens (loopback unless told otherwise) and who may log in."""

    listen: Listen = ("127.0.0.1", 8080)
    operators: tuple[WebOperator, ...] = ()
    # The Host header values the console answers (lower case, without the port): anything else gets 400, so a
    # page on another name (DNS rebinding onto loopback) cannot read it.  Default: the listen host and localhost.
    allowed_hosts: StringList = LOOPBACK_HOSTS

    @property
    def host(self) -> str:
        return self.listen[0]

    @property
    def port(self) -> int:
        return self.listen[1]

    @model_validator(mode="before")
    @classmethod
    def _default_hosts(cls, data: Any) -> Any:
        if isinstance(data, dict) and "allowed_hosts" not in data and "listen" in data:
            try:
                host, _port = listen_address(data["listen"])
            except KeyProblem:
                return data  # the listen key's own check names it
            return {**data, "allowed_hosts": tuple(dict.fromkeys((host.lower(), *LOOPBACK_HOSTS)))}
        return data

    @field_validator("allowed_hosts")
    @classmethod
    def _lower(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(h.strip().lower() for h in hosts)

    @field_validator("operators")
    @classmethod
    def _strong_and_alike(cls, operators: tuple[WebOperator, ...]) -> tuple[WebOperator, ...]:
        seen: set[str] = set()
        for operator in operators:
            _check_password_hash(operator.login, operator.password_hash)
            if operator.login in seen:
                raise KeyProblem(None, f"{operator.login}: listed twice")
            seen.add(operator.login)
        if len({argon2_cost(o.password_hash) for o in operators}) > 1:
            # An unknown login is checked against a dummy hash of the same cost; with two costs, the time of a
            # refusal would tell which logins exist.
            raise KeyProblem(None, "every password_hash must use the same Argon2 parameters; "
                                   "make them all with 'dsr-mailbot web hash-password'")
        return operators


def argon2_cost(password_hash: str) -> tuple[int, int, int]:
    from argon2 import extract_parameters

    parameters = extract_parameters(password_hash)
    return parameters.time_cost, parameters.memory_cost, parameters.parallelism


def _check_password_hash(login: str, password_hash: str) -> None:
    """Argon2id, at least as strong as RFC 9106 recommends; the message never echoes the hash."""
    from argon2 import Type, extract_parameters
    from argon2.exceptions import InvalidHashError

    try:
        parameters = extract_parameters(password_hash) if password_hash.startswith(ARGON2_PREFIX) else None
    except (InvalidHashError, ValueError):
        parameters = None
    if parameters is None or parameters.type is not Type.ID:
        raise KeyProblem(None, f"{login}: password_hash is not an Argon2id hash; "
                               "make one with 'dsr-mailbot web hash-password'")
    strong = (parameters.memory_cost >= MIN_MEMORY_KIB and parameters.time_cost >= MIN_PASSES) or \
        parameters.memory_cost >= FIRST_OPTION_MEMORY_KIB
    if not strong:
        raise KeyProblem(None, f"{login}: password_hash is too cheap to guess against "
                               f"(m={parameters.memory_cost} KiB, t={parameters.time_cost}); RFC 9106 asks for at "
                               "least m=65536 and t=3, or m=2097152; make one with 'dsr-mailbot web hash-password'")
