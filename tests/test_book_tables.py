"""Tables that fit the page's column (seqlib.book.chapter.show_table): split into column groups by their
narrowest width, shown whole, a missing value as a dash; the site test checks the rendered widths."""

from __future__ import annotations

import pandas as pd
import pytest

from seqlib.book import chapter


@pytest.fixture
def shown(monkeypatch) -> list[pd.DataFrame]:
    """The frames the chapter helpers display."""
    frames = []
    monkeypatch.setattr(chapter, "display", frames.append)
    return frames


def test_a_wide_table_splits_into_groups_that_fit_and_keeps_its_index():
    wide = pd.DataFrame({f"column_{i}": ["x" * 20] for i in range(8)}, index=pd.Index(["a"], name="task"))
    groups = chapter.column_groups(wide, room=600)
    assert [c for g in groups for c in g] == list(wide.columns) and len(groups) > 1
    assert all(sum(chapter._min_width([c, *wide[c]]) for c in g) + chapter._min_width(["task", "a"]) <= 600
               for g in groups)
    assert chapter.column_groups(wide.iloc[:, :2], room=600) == [list(wide.columns[:2])]


def test_words_wrap_so_only_the_longest_word_counts():
    prose = pd.DataFrame({"note": ["a long sentence of short words " * 10]})
    assert chapter._min_width(prose["note"]) == len("sentence") * chapter.CHAR_PX + chapter.CELL_PX


def test_show_table_shows_every_row_and_no_nan(shown):
    chapter.show_table(pd.DataFrame({"v": [float("nan"), *range(199)]}))
    (table,) = shown
    assert len(table) == 200 and table["v"].iloc[0] == chapter.MISSING


def test_show_settings_puts_the_shared_values_in_one_column(shown):
    chapter.show_settings({"a": {"steps": 10, "lr": 1}, "b": {"steps": 10, "lr": 2}})
    tables = shown
    assert tables[0].to_dict() == {"every task": {"steps": "10"}}
    assert tables[1].to_dict() == {"lr": {"a": "1", "b": "2"}}
