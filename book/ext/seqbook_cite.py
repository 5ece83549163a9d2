"""Sphinx extension: citations in round brackets, author-year: ``{cite:p}`` reads "(De et al., 2024)" and
``{cite:t}`` "De et al. (2024)".

sphinxcontrib-bibtex's ``author_year`` style puts square brackets around both; this registers the same
style with round ones as ``author_year_round``, which ``_config.yml`` selects with
``bibtex_reference_style`` (the style is looked up when the builder starts, after this module loaded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sphinxcontrib.bibtex.plugin import register_plugin
from sphinxcontrib.bibtex.style.referencing import BracketStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

STYLE = "author_year_round"


def round_brackets() -> BracketStyle:
    return BracketStyle(left="(", right=")")


@dataclass
class RoundAuthorYear(AuthorYearReferenceStyle):
    """:class:`AuthorYearReferenceStyle` with round brackets everywhere."""

    bracket_parenthetical: BracketStyle = field(default_factory=round_brackets)
    bracket_textual: BracketStyle = field(default_factory=round_brackets)
    bracket_author: BracketStyle = field(default_factory=round_brackets)
    bracket_label: BracketStyle = field(default_factory=round_brackets)
    bracket_year: BracketStyle = field(default_factory=round_brackets)


def setup(app):
    register_plugin("sphinxcontrib.bibtex.style.referencing", STYLE, RoundAuthorYear)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
