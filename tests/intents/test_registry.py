"""The intent registry: every intent complete (handler, markers, deadlines, templates), dispatch exhaustive."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsr_mailbot.errors import ConfigError, TemplateError
from dsr_mailbot.intents import registry
from dsr_mailbot.intents.deadlines import profiles
from dsr_mailbot.reading.classify import LANGUAGES, shipped_markers
from dsr_mailbot.replies.render import Renderer
from dsr_mailbot.service.app import check_registry
from dsr_mailbot.store.models import RequestKind
from tests.harness import REPO


def test_every_intent_has_markers_deadlines_and_templates_in_every_language() -> None:
    check_registry(shipped_markers(), list(profiles()), Renderer(operator_name="Shop"))
    for kind, spec in registry.REGISTRY.items():
        assert spec.kind is kind
        for template in spec.templates:
            for language in LANGUAGES:
                assert (REPO / "templates" / language / f"{template}.txt").is_file()


def test_every_reply_template_is_checked_at_start_up_through_some_intent() -> None:
    """build_services relies on check_registry alone to render every template: none may be left out of it."""
    from dsr_mailbot.replies.reply import OUTCOME_TEMPLATES

    declared = {t for spec in registry.REGISTRY.values() for t in spec.templates} | set(registry.COMMON_TEMPLATES)
    assert set(OUTCOME_TEMPLATES) <= declared


def test_a_kind_without_a_handler_is_a_start_up_error_not_another_intents_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    without_optout = {k: v for k, v in registry.REGISTRY.items() if k is not RequestKind.OPTOUT}
    monkeypatch.setattr(registry, "REGISTRY", without_optout)
    monkeypatch.setattr("dsr_mailbot.service.app.REGISTRY", without_optout)
    with pytest.raises(ConfigError, match="intent optout: no handler"):
        check_registry(shipped_markers(), ["ru-152fz"], Renderer(operator_name="Shop"))


def test_an_intent_without_markers_in_a_language_is_refused() -> None:
    markers = tuple(m for m in shipped_markers() if not (m.kind is RequestKind.UPDATE and m.language == "kk"))
    with pytest.raises(ConfigError, match="intent update: no subject markers in kk"):
        check_registry(markers, ["ru-152fz"], Renderer(operator_name="Shop"))


def test_a_broken_branch_of_a_template_fails_at_start_up(tmp_path: Path) -> None:
    """Only the 'nothing changed' branch is broken: one sample context alone would not find it."""
    import shutil

    shutil.copytree(REPO / "templates", tmp_path / "templates")
    optout = tmp_path / "templates" / "kk" / "optout_applied.txt"
    optout.write_text(optout.read_text(encoding="utf-8")
                      + "{% if not changes %}{{ no_such_name }}{% endif %}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match="kk/optout_applied"):
        check_registry(shipped_markers(), ["ru-152fz"], Renderer(tmp_path / "templates", operator_name="Shop"))


def test_a_letters_intents_run_in_the_registrys_order_with_the_strictest_confirmation() -> None:
    from dsr_mailbot.intents.registry import confirmation_of, in_order
    from dsr_mailbot.trust.verify import Confirmation

    assert in_order(["withdraw", "optout", "access", "update", "optout"]) == (
        RequestKind.UPDATE, RequestKind.OPTOUT, RequestKind.ACCESS, RequestKind.WITHDRAW)  # the update first
    assert confirmation_of(["optout"]) is Confirmation.NEVER
    assert confirmation_of(["optout", "update"]) is Confirmation.UNLESS_AUTHENTICATED
    assert confirmation_of(["optout", "update", "access"]) is Confirmation.ALWAYS


def test_contradictory_intents_are_named() -> None:
    from dsr_mailbot.intents.registry import conflict_of

    assert conflict_of(["withdraw", "update", "optout"]) == "update_and_withdrawal"
    assert conflict_of(["update", "optout", "access"]) is None
