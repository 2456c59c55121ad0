"""Printable, signable PDF of an act of destruction and its log extract (fpdf2: pure Python, embeds the font).

The text is the act's or the extract's own lines, so the PDF says exactly
what ``--format text`` says; the signature lines are part of the text.  The
names are Cyrillic or Kazakh, so a TrueType font with those letters is
embedded: DejaVu Sans (Debian's ``fonts-dejavu-core``) or Liberation Sans.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dsr_mailbot.errors import ConfigError

FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
)


def font_file(candidates: Sequence[str] = FONTS) -> Path:
    for candidate in candidates:
        if Path(candidate).is_file():
            return Path(candidate)
    raise ConfigError("no TrueType font with Cyrillic letters for PDF output: install fonts-dejavu-core "
                      f"(looked for {', '.join(candidates)})")


def pdf(title: str, lines: Sequence[str], font: Path | None = None) -> bytes:
    """A4 pages of ``lines`` (the first is the heading), with ``title`` in the document's properties."""
    from fpdf import FPDF  # a quarter of a second to import: only when a PDF is asked for

    document = FPDF(format="A4")
    document.set_title(title)
    document.set_creator("dsr-mailbot")
    document.add_font("body", fname=str(font or font_file()))
    document.set_margins(18, 18, 18)
    document.set_auto_page_break(True, margin=18)
    document.add_page()
    for number, line in enumerate(lines):
        document.set_font("body", size=12 if number == 0 else 9.5)
        document.multi_cell(0, 7 if number == 0 else 5, line or " ", new_x="LMARGIN", new_y="NEXT")
    return bytes(document.output())
