"""Acts of destruction: each system's part written beside the bot's own, read back, and older acts still read."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, replace
from pathlib import Path

from dsr_mailbot.store.acts import Act, ActOperator, ActSigner, ActSystem, ActTable, read_act, write_act

ACT = Act(act_id="7", made_at="2026-12-06T10:00:00+00:00", system_name="SmartThings online shop customer database",
          subject_full_name="Ким Павел Олегович", subject_ref="ref", categories=("email", "phone"),
          reason="withdrawal", request_id=7, request_received_at="2026-11-06T10:00:00+00:00", method="DELETE",
          processed_messages_expunged=1, ordinary_messages_left_in_inbox=0, notice="queued",
          systems=(ActSystem("Shop", "done", 2, 1, (ActTable("b_user", deleted=1),
                                                    ActTable("sale_order", updated=1,
                                                             cleared=("CONTACT_EMAIL", "CONTACT_PHONE")),
                                                    ActTable("newsletter", deleted=1))),
                   ActSystem("Mailer", "failed")))


def test_each_systems_part_is_written_read_back_and_printed_table_by_table(tmp_path: Path) -> None:
    path = write_act(tmp_path, ACT)

    assert os.stat(path).st_mode & 0o777 == 0o600
    assert read_act(tmp_path, "7") == ACT
    text = ACT.as_text()
    assert "System: Shop: done; rows deleted 2, rows with columns cleared 1" in text
    assert "  table sale_order: rows deleted 0, rows updated 1 (columns cleared: CONTACT_EMAIL, CONTACT_PHONE)" in text
    assert "System: Mailer: failed; rows deleted 0" in text
    assert "@" not in path.read_text(encoding="utf-8")  # no address, whatever the systems did


def test_an_act_written_before_the_data_map_is_still_read(tmp_path: Path) -> None:
    old = {k: v for k, v in asdict(ACT).items() if k != "systems"}
    (tmp_path / "act-7.json").write_text(json.dumps(old), encoding="utf-8")

    act = read_act(tmp_path, "7")

    assert act is not None and act.systems == () and act.categories == ("email", "phone")
    assert "System:" not in act.as_text()


def test_an_act_made_before_issue_20_has_no_operator_and_prints_without_one(tmp_path: Path) -> None:
    old = {k: v for k, v in asdict(ACT).items() if k != "operator"}
    (tmp_path / "act-7.json").write_text(json.dumps(old), encoding="utf-8")

    act = read_act(tmp_path, "7")

    assert act is not None and act.operator == ActOperator()
    assert "Operator:" not in act.as_text() and "Оператор:" not in act.as_text("ru")


def test_the_regulators_copy_has_russian_labels_and_a_signature_line_per_signer() -> None:
    signed = replace(ACT, operator=ActOperator("SmartThings LLP", "Алматы", "123456789012", "Анна Ким", "dpo@x.kz",
                                               (ActSigner("Нурлан С.", "Директор"),)))
    lines = signed.lines("ru")
    assert lines[0] == "АКТ ОБ УНИЧТОЖЕНИИ ПЕРСОНАЛЬНЫХ ДАННЫХ № 7"
    assert "Оператор: SmartThings LLP, БИН 123456789012; адрес: Алматы" in lines
    assert "  таблица sale_order: удалено строк 0, изменено строк 1 (очищены столбцы: CONTACT_EMAIL, CONTACT_PHONE)" \
        in lines
    assert lines[-1] == "  Директор, Нурлан С.: ______________________ (подпись)   дата ____________"
    assert [line for line in signed.lines("en") if "(signature)" in line] == [
        "  Директор, Нурлан С.: ______________________ (signature)   date ____________"]
