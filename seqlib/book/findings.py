"""What the runs found, generated from the records: the Findings of the landing page, the runs section of
each task page, and the opening of every task chapter's page (tested in ``tests/test_book_findings.py``).

A finding is stated from the records of one profile only (:func:`seqlib.book.report.profile_records`),
with the headline each task's scoring card names at the learning rate :func:`~seqlib.book.report.leaderboard`
chose, and only with its evidence: the executed page of the model it names must be among the profile's
pages, and the finding links to it. Each value carries its 95% interval, its seeds and rate, the share of
the step budget its runs used, and whether they fit their training distribution
(:func:`~seqlib.book.report.fit_note`). An order between two models is a claim only where the paired test
can reject (:func:`~seqlib.book.report.pairwise`, Holm-adjusted over the comparisons of one page);
otherwise the finding says it is not tested.

``python -m seqlib.book.findings [--profile P]`` (``make book`` runs it) writes them beside the
profile's pages, ``<pages>/_findings/intro.md`` and ``<pages>/_findings/<task>.md``, which
``book/intro.md`` and ``book/tasks/<task>.md`` include: a staging tree of another profile
(:mod:`seqlib.book.pages`) shows that profile's findings with its pages.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from seqlib.book.chapter import column_groups, profile_note
from seqlib.book.grid import load_grid
from seqlib.book.pages import GRID, PagesError, chosen_profile, pages_dir
from seqlib.book.report import (
    ALPHA,
    NOT_FIT,
    chosen_runs,
    fit_note,
    leaderboard,
    model_sizes,
    pairwise,
    profile_records,
    scoring,
    selection_note,
)
from seqlib.book.sources import (
    CELL_PUBLISHED,
    against_cells,
    against_lm_claims,
    against_sources,
    lm_claims_rule,
)
from seqlib.book.toc import model_title
from seqlib.config import load_config
from seqlib.provenance import REPO
from seqlib.record import RunRecord
from seqlib.stats import holm

FOLDER = "_findings"  # under a profile's pages folder
BREAK = "_\u200b"  # an underscore the browser may break a long task name after, in a table
DETAILED = 2  # tasks of a family stated one by one (those with the most seeds); the others are summarised


@dataclass
class Family:
    """A task chapter of the grid: its landing page ``book/tasks/<name>.md``, its registry tasks, and the
    executed page of each model (``book/runs/<name>/<model>.ipynb`` in the profile's pages)."""

    name: str
    tasks: list[str]
    pages: dict[str, Path]


def families(profile: str, grid: Path = GRID, pages: Path | None = None, executed: bool = True) -> list[Family]:
    """The task chapters of ``grid`` whose runs the grid trains, in grid order, with their pages (under
    ``pages``, by default the profile's folder): those that exist, or with ``executed=False`` every page
    the grid executes (a chapter's page states its findings while the grid is still executing the
    others, which the same grid run writes from the same records)."""
    pages = pages or pages_dir(profile, grid)
    found: dict[str, Family] = {}
    for run in load_grid(grid, REPO / "chapters", pages, profile):
        if run.trains:
            family = found.setdefault(run.params["task"], Family(run.params["task"], run.trains, {}))
            if run.out.exists() or not executed:
                family.pages[run.params["model"]] = run.out
    return list(found.values())


def store_of(profile: str, task: str = "mqar", model: str = "hawk") -> Path:
    """The results store of a profile (its ``run.results_dir``, relative to the repository)."""
    return REPO / load_config(task, model, profile).run.results_dir


# ---- phrases --------------------------------------------------------------------------------------------

def number(v: float) -> str:
    """A score as the pages print it: three decimals, three significant digits below 0.01, 0 as 0."""
    return "0" if v == 0 else f"{v:.3g}" if abs(v) < 0.01 else f"{v:.3f}"


def budget(runs: list[RunRecord]) -> str:
    """The steps ``runs`` trained out of their cap, and why the ones that stopped early stopped."""
    done = [r.train.get("steps_done") for r in runs]
    caps = {r.config["optim"]["steps"] for r in runs}
    if not runs or None in done or len(caps) != 1:
        return "steps not recorded"
    cap = caps.pop()
    used = f"all {cap:,} steps of the cap" if min(done) == cap else (
        f"{min(done):,} of {cap:,} steps" if min(done) == max(done) else f"{min(done):,} to {max(done):,} of {cap:,} steps")
    reasons = Counter(r.train.get("stop_reason") or ("early stop" if r.train.get("stopped_early") else None)
                      for r in runs if r.train.get("steps_done") != cap)
    stopped = ", ".join(f"{why} ({n})" for why, n in sorted(reasons.items(), key=str) if why)
    return used + (f"; stopped: {stopped}" if stopped else "")


def value(row: pd.Series, records: list[RunRecord]) -> str:
    """A leaderboard row as a phrase: mean [95% interval] (seeds, rate, solved seeds, steps, fit)."""
    interval = "" if pd.isna(row["ci_low"]) else f" [{number(row['ci_low'])}, {number(row['ci_high'])}]"
    seeds = f"{row['n_seeds']} seeds" if row["n_seeds"] > 1 else "1 seed, no interval"
    parts = [seeds, f"lr {row['lr']:g}"]
    if not pd.isna(row["threshold"]):
        parts.append(f"{int(row['solved'])}/{row['n_seeds']} solved")
    parts.append(budget(chosen_runs(row, records)))
    parts.append(fit_note(row) or ("fit not recorded" if pd.isna(row.get("fit")) else "fit the training distribution"))
    if selection_note(row):  # a rate chosen on the split it reports
        parts.append(selection_note(row))
    return f"{number(row['mean'])}{interval} ({'; '.join(parts)})"


def ranked(rows: pd.DataFrame) -> pd.DataFrame:
    """A task's leaderboard rows, best first by the card's direction."""
    return rows.sort_values("mean", ascending=not rows["higher_is_better"].iloc[0], kind="stable")


def link(model: str, base: str, family: str) -> str:
    return f"[{model_title(model)}]({base}{family}/{model}.ipynb)"


# ---- comparisons ----------------------------------------------------------------------------------------

def comparisons(records: list[RunRecord], pairs: list[tuple[str, str, str]]) -> dict[tuple, str]:
    """(task, a, b) -> what the exact paired test says of a against b on the task's headline
    (:func:`seqlib.book.report.pairwise`), Holm-adjusted over the pairs that can be tested, which are
    the page's family of comparisons."""
    rows = {pair: pairwise([r for r in records if r.task == pair[0]], pair[1], pair[2]).loc[pair[0]] for pair in pairs}
    tested = [pair for pair, row in rows.items() if not pd.isna(row["Holm p"])]
    adjusted = dict(zip(tested, holm([rows[pair]["p"] for pair in tested])))
    said = {}
    for (task, a, b), row in rows.items():
        if (task, a, b) not in adjusted:
            said[(task, a, b)] = f"{model_title(a)} against {model_title(b)}: {row['result']}"
            continue
        adj, n = adjusted[(task, a, b)], int(row["paired seeds"])
        test = (f"exact sign-flip test over {n} paired seeds, p = {row['p']:.3g}, Holm-adjusted over the "
                f"{len(tested)} tested comparison{'s' * (len(tested) > 1)} here: {adj:.3g}")
        if adj < ALPHA:
            higher = scoring(next(r for r in records if r.task == task and r.status == "ok")).higher_is_better
            winner, loser = (a, b) if (row[f"{a} mean"] > row[f"{b} mean"]) == higher else (b, a)
            said[(task, a, b)] = f"{model_title(winner)} better than {model_title(loser)} ({test})"
        else:
            said[(task, a, b)] = f"no significant difference between {model_title(a)} and {model_title(b)} ({test})"
    return said


# ---- findings -------------------------------------------------------------------------------------------

def evidenced(board: pd.DataFrame, family: Family) -> pd.DataFrame:
    """The rows of ``board`` on the family's tasks whose model has an executed page: no finding without it."""
    return board[board["task"].isin(family.tasks) & board["model"].isin(family.pages)] if not board.empty else board


def detailed_tasks(rows: pd.DataFrame, tasks: list[str]) -> list[str]:
    """The tasks stated one by one: those with the most seeds (the headline comparisons the profile
    sweeps), if there are at most :data:`DETAILED` of them; none else (all are summarised)."""
    seeds = rows.groupby("task")["n_seeds"].max()
    most = [t for t in tasks if t in seeds.index and seeds[t] == seeds.max()]
    return most if len(most) <= DETAILED else []


def task_bullet(rows: pd.DataFrame, records: list[RunRecord], family: str, base: str, said: dict,
                focus: str | None = None) -> str:
    """One task's finding: the best model (and ``focus``, if another) with its value, the solved
    models, and what the paired test says of the two at the top."""
    order = ranked(rows)
    top, card = order.iloc[0], scoring(next(r for r in records if r.task == order.iloc[0]["task"] and r.status == "ok"))
    head = (f"**`{top['task']}`** ({top['label']} on `{card.split}`, {'higher' if top['higher_is_better'] else 'lower'} "
            f"is better; {len(order)} models): best {link(top['model'], base, family)} {value(top, records)}")
    lines = [head]
    if focus and focus != top["model"] and focus in set(order["model"]):
        mine = order[order["model"] == focus].iloc[0]
        rank = list(order["model"]).index(focus) + 1
        lines.append(f"{model_title(focus)}, this page's model, is {ordinal(rank)} of {len(order)}: {value(mine, records)}")
    if len(order) > 1:
        lines.append(said[(top["task"], top["model"], rival(order, focus))])
    if not pd.isna(card.solve_threshold):
        solved = [f"{model_title(r.model)} {int(r.solved)}/{r.n_seeds}" for r in order.itertuples() if r.solved]
        lines.append(f"seeds at the card's solve line ({card.solve_threshold:g}): " + ", ".join(solved) if solved
                     else f"no seed of any model reached the card's solve line ({card.solve_threshold:g})")
    return "- " + "; ".join(lines) + "."


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third"}.get(n, f"{n}th")


def rival(order: pd.DataFrame, focus: str | None) -> str:
    """Whom the best model of ``order`` (:func:`ranked` rows, two or more) is compared with: ``focus``
    where it is another of them, else the second best."""
    top = order.iloc[0]["model"]
    return focus if focus and focus != top and focus in set(order["model"]) else order.iloc[1]["model"]


def pairs_of(rows: pd.DataFrame, tasks: list[str], focus: str | None) -> list[tuple[str, str, str]]:
    """The comparisons :func:`task_bullet` states for ``tasks``: the best model against its :func:`rival`."""
    orders = [ranked(rows[rows["task"] == task]) for task in tasks]
    return [(o.iloc[0]["task"], o.iloc[0]["model"], rival(o, focus)) for o in orders if len(o) > 1]


def rest_line(rows: pd.DataFrame, tasks: list[str], focus: str | None) -> str:
    """The tasks not stated one by one, summarised: how many seeds, which model is best how often, which
    tasks any model solved (or ``focus`` did) and whether the runs fit their training distribution."""
    if not tasks:
        return ""
    part = rows[rows["task"].isin(tasks)]
    seeds = sorted(set(part["n_seeds"]))
    best = Counter(ranked(g).iloc[0]["model"] for _, g in part.groupby("task"))
    solved = sorted({r.task for r in part.itertuples() if r.n_seeds and r.solved == r.n_seeds
                     and (focus is None or r.model == focus)})
    who = f"solved by {model_title(focus)} on every seed" if focus else "solved by some model on every seed"
    seed_text = f"{'/'.join(map(str, seeds))} seed{'s' * (seeds != [1])} each" + (", no intervals" if seeds == [1] else "")
    which = f"The other {plural(len(tasks), 'task')}" if len(tasks) < rows["task"].nunique() else f"The {plural(len(tasks), 'task')}"
    wins = [f"{model_title(m)} on {n}" for m, n in best.most_common()]
    if focus and focus not in best:
        wins.append(f"{model_title(focus)} on none")
    unfit = part[part["fit"] < part["n_seeds"]] if part["fit"].notna().all() else None
    fit = ("fit not recorded" if unfit is None else "every run fit its training distribution" if unfit.empty
           else f"{plural(len(unfit), '(task, model) pair')} with seeds that {NOT_FIT}")
    return (f"- **{which}** ({seed_text}): best by the mean " + ", ".join(wins)
            + f"; {who}: " + (", ".join(f"`{t}`" for t in solved) if solved else "none") + f"; {fit}.")


def family_bullets(board: pd.DataFrame, records: list[RunRecord], family: Family, base: str,
                   focus: str | None = None) -> list[str]:
    """The findings of one task chapter, as Markdown list items (empty when nothing has evidence)."""
    rows = evidenced(board, family)
    if rows.empty:
        return []
    tasks = [t for t in family.tasks if t in set(rows["task"])]
    detailed = detailed_tasks(rows, tasks)
    said = comparisons(records, pairs_of(rows, detailed, focus))
    bullets = [task_bullet(rows[rows["task"] == t], records, family.name, base, said, focus) for t in detailed]
    rest = rest_line(rows, [t for t in tasks if t not in detailed], focus)
    return bullets + ([rest] if rest else [])


def provenance_line(records: list[RunRecord], profile: str) -> str:
    """Where the records come from: how many runs of how many models and tasks, when, on what, at which
    commits, with which step caps, rates and seeds."""
    ok = [r for r in records if r.status == "ok"]
    if not ok:
        return f"No `{profile}` run has a record yet."
    ends = sorted(r.provenance.end_time or "" for r in ok)
    devices = sorted({r.provenance.device_name for r in ok})
    commits = sorted({(r.provenance.commit or "?")[:7] for r in ok})
    caps = sorted({r.config["optim"]["steps"] for r in ok})
    lrs = sorted({r.lr for r in ok})
    seeds = sorted({r.seed for r in ok})
    when = ends[0][:10] if ends[0][:10] == ends[-1][:10] else f"{ends[0][:10]} to {ends[-1][:10]}"
    return (f"From {plural(len(ok), 'run')} of the `{profile}` profile ({plural(len({r.model for r in ok}), 'model')} × "
            f"{plural(len({r.task for r in ok}), 'task')}), finished {when} on "
            f"{', '.join(devices)} at commit{'s' * (len(commits) > 1)} {', '.join(f'`{c}`' for c in commits)}; "
            f"step caps {', '.join(f'{c:,}' for c in caps)}, learning rates {', '.join(f'{lr:g}' for lr in lrs)}, "
            f"seeds {', '.join(map(str, seeds))}.{profile_note(profile)}")


def family_table(rows: pd.DataFrame, family: Family, base: str) -> str:
    """Markdown tables of the family's headline means (task rows, model columns; the interval where
    there are two seeds or more), the best of each task in bold, the models in as many tables as the
    page's column needs (:func:`seqlib.book.chapter.column_groups`)."""
    models = [m for m in family.pages if m in set(rows["model"])]
    cells = pd.DataFrame(index=pd.Index([t for t in family.tasks if t in set(rows["task"])], name="task"),
                         columns=models, dtype=object)
    for task in cells.index:
        order = ranked(rows[rows["task"] == task])
        for r in order.itertuples():
            text = number(r.mean) + ("" if pd.isna(r.ci_low) else f" [{number(r.ci_low)}, {number(r.ci_high)}]")
            cells.loc[task, r.model] = f"**{text}**" if r.model == order.iloc[0]["model"] else text
    cells = cells.fillna("no run").rename(index=lambda t: t.replace("_", BREAK))
    tables = []
    for group in column_groups(cells.rename(columns=model_title)):
        names = [m for m in models if model_title(m) in group]
        lines = ["| task | " + " | ".join(link(m, base, family.name) for m in names) + " |",
                 "|---" * (len(names) + 1) + "|"]
        lines += [f"| {task} | " + " | ".join(row[names]) + " |" for task, row in cells.iterrows()]
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def sources_section(rows: pd.DataFrame, records: list[RunRecord], family: Family,
                    cells: pd.DataFrame | None = None) -> list[str]:
    """The family's comparisons with the published results (:func:`seqlib.book.sources.against_sources`,
    then those of its ``cells``: :func:`~seqlib.book.sources.against_cells`) as a paragraph and a bullet
    per comparison (a table of them is wider than the page), or nothing where no source reports on its
    tasks."""
    table = pd.concat([against_sources(rows, records, family.tasks), cells], ignore_index=True)
    if table.empty:
        return []
    marks = Counter(table["verdict"])
    head = ("**Beside the published results.** Each comparison the book makes on these tasks, marked from the "
            f"records ({', '.join(f'{n} {mark}' for mark, n in sorted(marks.items()))}; the Results page says how): "
            "our headline, the source's value, where it comes from and how far it is checked, and the share of "
            "the source's training budget our chosen runs had.")
    bullets = [f"- **{r['task'].replace('_', BREAK)}, {model_title(r['model'])}: {r['verdict']}.** Ours: {r['ours']}. "
               f"{r['source']}: {r['reported by the source']}; {r['checked']}. {r['why'][:1].upper()}{r['why'][1:]}"
               + (f"; {r['our budget']}." if r["our budget"] else ".") for r in table.to_dict("records")]
    return [head, "\n".join(bullets)]


def unigram_bar() -> float | None:
    """The byte-unigram model's bits per byte on the corpus's test split (:func:`seqlib.corpus.unigram_bits`),
    or None where the corpus is not built."""
    from seqlib import corpus

    try:
        return corpus.unigram_bits("test")
    except FileNotFoundError:
        return None


def extrapolation_lines(records: list[RunRecord], family: Family) -> list[str]:
    """For the text task: which models improve, hold or break past the training context
    (:func:`seqlib.book.report.extrapolation` of their test curves), those that do not beat the
    byte-unigram model apart; nothing for a family without it or without a curve."""
    from seqlib.book.report import EXTRAPOLATION_TOLERANCE, bits_curves, extrapolation

    if "text" not in family.tasks:
        return []
    trends = extrapolation(bits_curves([r for r in records if r.task == "text"]))
    if trends.empty:
        return []
    bar = unigram_bar()
    learned = trends if bar is None else trends[trends["train_bits"] < bar]
    parts = [f"{trend}: " + ", ".join(f"{model_title(r.model)} ({r.change:+.1%})" for r in g.itertuples())
             for trend, g in learned.groupby("trend", sort=False)]
    unfit = trends.drop(learned.index)
    return [f"**Past the training context** (test bits per byte at the longest length against the training length "
            f"{trends['train_length'].iloc[0]:,}, at each model's chosen rate; a change within "
            f"±{EXTRAPOLATION_TOLERANCE:.0%} holds): " + "; ".join(parts)
            + (f"; not held to it, as they do not beat the byte-unigram model ({bar:.3f} bits per byte): "
               + ", ".join(model_title(m) for m in unfit["model"]) if not unfit.empty else "")
            + ("" if bar is not None else " (the corpus is not built here, so no run is checked against the "
               "byte-unigram model)") + "."]


@dataclass
class Findings:
    """The records of one profile and the findings they support."""

    profile: str
    families: list[Family]
    records: list[RunRecord]
    grid: Path = GRID

    @classmethod
    def load(cls, profile: str, grid: Path = GRID, pages: Path | None = None, executed: bool = True) -> Findings:
        """The findings of ``profile``'s records (see :func:`families` for ``pages`` and ``executed``)."""
        found = families(profile, grid, pages, executed)
        tasks = {t for f in found for t in f.tasks}
        store = store_of(profile, *next(((f.tasks[0], next(iter(f.pages))) for f in found if f.pages), ("mqar", "hawk")))
        records = [r for r in profile_records(store, profile).records if r.task in tasks]
        return cls(profile, found, records, grid)

    @cached_property
    def board(self) -> pd.DataFrame:
        """The leaderboard of every record (the landing page's)."""
        return leaderboard(self.records)

    def family_records(self, family: Family) -> list[RunRecord]:
        return [r for r in self.records if r.task in family.tasks]

    def family_board(self, family: Family) -> pd.DataFrame:
        """The leaderboard of one task chapter's records, its pages' rows (:func:`evidenced`)."""
        return evidenced(leaderboard(self.family_records(family)), family)

    def further_comparisons(self, family: Family, rows: pd.DataFrame) -> pd.DataFrame | None:
        """The family's comparisons beyond its leaderboard's (None: it has none): its cells' with the
        sources' plots (MQAR) and Griffin's language-modelling claims (the text task, with its second
        budget's cell)."""
        from seqlib.book.cells import by_cell, entry_plan, scores

        lm = "text" in family.tasks
        if family.name not in CELL_PUBLISHED and not lm:
            return None
        cells = scores(by_cell(entry_plan(family.name, self.profile, self.grid)))
        tables = [against_cells(cells, family.name)] if family.name in CELL_PUBLISHED else []
        if lm:
            tables.append(against_lm_claims(rows, self.family_records(family), cells[cells["family"] == "large"],
                                            unigram_bar()))
        return pd.concat(tables, ignore_index=True)

    def family(self, name: str) -> Family:
        return next(f for f in self.families if f.name == name)

    def intro(self) -> str:
        """The landing page's Findings: where the records come from, then per task chapter its findings."""
        board, parts = self.board, [provenance_line(self.records, self.profile)]
        for family in self.families:
            bullets = family_bullets(board, self.records, family, "runs/")
            if bullets:
                parts.append(f"**[{task_page_title(family.name)}](tasks/{family.name}.md)**\n\n" + "\n".join(bullets))
        if len(parts) == 1:
            parts.append("No finding has its evidence among the pages yet.")
        return "\n\n".join(parts) + "\n"

    def task_page(self, name: str) -> str:
        """A task page's runs section: where its records come from, the table of headline means, the findings."""
        family = self.family(name)
        records, rows = self.family_records(family), self.family_board(family)
        if rows.empty:
            return provenance_line(records, self.profile) + "\n\nNo run of this chapter has its page among the pages yet.\n"
        return "\n\n".join([provenance_line(records, self.profile),
                            "Headline per task and model: the mean over seeds at the chosen learning rate, with its "
                            "95% bootstrap interval where there are two seeds or more; the best in bold. Each model's "
                            "page shows its runs.", family_table(rows, family, "../runs/"),
                            "\n".join(family_bullets(rows, records, family, "../runs/")),
                            *extrapolation_lines(records, family),
                            *sources_section(rows, records, family, self.further_comparisons(family, rows)),
                            *([lm_claims_rule()] if "text" in family.tasks else [])]) + "\n"

    def model_page(self, name: str, model: str) -> tuple[str, object]:
        """A task chapter page's opening: the findings for ``model`` among the models of its chapter, and the
        headline figure (:func:`seqlib.book.plots.headline_chart`, ``None`` without a score)."""
        from seqlib.book.plots import headline_chart

        family = self.family(name)
        records, board = self.family_records(family), self.family_board(family)
        bullets = family_bullets(board, records, family, "../", focus=model)
        if not bullets:
            return f"No finding yet: no `{self.profile}` record of this chapter's tasks has its page.", None
        text = ("**What the runs found.** " + provenance_line(records, self.profile) + " The figure below shows "
                "every model's headline; the bullets state the tasks with the most seeds one by one.\n\n"
                + "\n".join(bullets))
        return text, headline_chart(board, highlight=model)

    def write(self, pages: Path) -> list[Path]:
        """Write ``_findings/intro.md`` and ``_findings/<task chapter>.md`` under ``pages``."""
        folder = pages / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        written = {folder / "intro.md": self.intro(), **{folder / f"{f.name}.md": self.task_page(f.name) for f in self.families}}
        for path, text in written.items():
            path.write_text(text)
        return list(written)


def task_page_title(name: str, book: Path = REPO / "book") -> str:
    """The ``# `` title of ``book/tasks/<name>.md``."""
    return next(line[2:].strip() for line in (book / "tasks" / f"{name}.md").read_text().splitlines()
                if line.startswith("# "))


def show_findings(task: str, model: str, profile: str) -> None:
    """A task chapter's opening: what the stored records of its tasks show for ``model`` beside the other
    models of the chapter, and the headline figure (:meth:`Findings.model_page`)."""
    from IPython.display import Markdown, display

    found = Findings.load(profile, executed=False)
    text, chart = found.model_page(task, model)
    display(Markdown(text))
    if chart is not None:
        display(chart)
    family = found.family(task)
    sizes = model_sizes([r for r in found.family_records(family) if r.model in family.pages])
    if not sizes.empty:
        from seqlib.book.chapter import show_table

        display(Markdown(f"The size of every model of the chapter, as its `{profile}` records measured it: its "
                         "parameters and its decode state (elements carried from token to token; attention's "
                         "grows with the length), the median over the chapter's tasks, with their range:"))
        show_table(sizes.loc[:, (sizes != "").any()])  # a range column where some model's tasks differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seqlib.book.findings", description=__doc__.split("\n")[0])
    parser.add_argument("--profile", help="whose records and pages (default: the committed profile)")
    parser.add_argument("--pages", type=Path, help="the profile's pages folder (default: where the grid puts them)")
    parser.add_argument("--grid", type=Path, default=GRID)
    args = parser.parse_args(argv)
    try:
        profile = chosen_profile(args.profile, args.grid)
    except PagesError as err:
        print(f"seqbook findings: {err}", file=sys.stderr)
        return 2
    pages = args.pages or pages_dir(profile, args.grid)
    for path in Findings.load(profile, args.grid, pages).write(pages):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
