"""The findings the landing page, the task pages and the task chapters open with (seqlib.book.findings):
generated from the records, shown only with their evidence, cautious where the seeds are few, and the
committed ones current."""

from __future__ import annotations

import re

import pytest
import test_book_report as rep

from seqlib.book import findings
from seqlib.book.findings import Family, Findings
from seqlib.book.pages import COMMITTED, committed_profile
from seqlib.provenance import REPO


def runs(model: str, scores: list[float], fit: bool | None = None, steps: int = 1) -> list:
    """One parity-check record per seed with ``scores`` as its test-length accuracy."""
    out = []
    for seed, v in enumerate(scores):
        r = rep.record(model=model, seed=seed, metrics=rep.rows("test", {5: v}) + rep.rows("val", {3: v}), select="val")
        r.config["optim"] = {"steps": 10}
        r.train["steps_done"] = steps
        if fit is not None:
            r.train["fit"] = fit
        out.append(r)
    return out


def found(records, models=("hawk", "gru")) -> Findings:
    family = Family("chomsky", ["parity_check"], {m: REPO / "book" / "runs" / "chomsky" / f"{m}.ipynb" for m in models})
    return Findings("full", [family], records)


def test_six_seeds_can_make_a_claim_three_cannot():
    """Hawk above the GRU on every seed: with 6 paired seeds the exact test rejects (p = 2/64), with 3 it
    cannot (p >= 0.25) and the finding says no claim either way."""
    six = found(runs("hawk", [0.9] * 6) + runs("gru", [0.5] * 6)).intro()
    assert "Hawk better than GRU (exact sign-flip test over 6 paired seeds, p = 0.0312" in six
    three = found(runs("hawk", [0.9] * 3) + runs("gru", [0.5] * 3)).intro()
    assert "better than" not in three and "no claim either way" in three


def test_a_finding_states_its_interval_seeds_budget_fit_and_evidence():
    text = found(runs("hawk", [0.9, 0.8, 1.0], fit=False, steps=7) + runs("gru", [0.5] * 3, fit=True)).intro()
    assert re.search(r"best \[Hawk\]\(runs/chomsky/hawk\.ipynb\) 0\.900 \[0\.\d+, 1\.000\] \(3 seeds; lr 0\.001", text)
    assert "7 of 10 steps" in text and "did not fit the training distribution" in text
    assert "From 6 runs of the `full` profile (2 models × 1 task)" in text


def test_no_finding_without_its_evidence_page():
    """A model without an executed page is not named; with no page at all nothing is found."""
    records = runs("hawk", [0.9] * 3) + runs("gru", [0.5] * 3)
    only_gru = found(records, models=("gru",)).intro()
    assert "Hawk" not in only_gru and "best [GRU](runs/chomsky/gru.ipynb)" in only_gru
    assert "No finding has its evidence among the pages yet." in found(records, models=()).intro()


def test_a_model_page_places_its_model_and_draws_the_headline():
    text, chart = found(runs("hawk", [0.9] * 3) + runs("gru", [0.5] * 3)).model_page("chomsky", "gru")
    assert "GRU, this page's model, is second of 2" in text and "[Hawk](../chomsky/hawk.ipynb)" in text
    spec = chart.to_dict()
    assert spec["vconcat"][0]["layer"][1]["encoding"]["yOffset"]["field"] == "model"
    assert spec["params"][0]["value"] == [{"model": "gru"}]  # the page's model starts picked


@pytest.fixture(scope="module")
def committed() -> Findings:
    return Findings.load(committed_profile())


@pytest.mark.parametrize("page", ["intro", *[f.name for f in findings.families(committed_profile())]])
def test_the_committed_findings_are_the_records_s(page, committed):
    """``book/runs/_findings/*.md`` is what the committed store and pages give (``make book`` writes it)."""
    expected = committed.intro() if page == "intro" else committed.task_page(page)
    assert (REPO / COMMITTED / findings.FOLDER / f"{page}.md").read_text() == expected, \
        "the findings are stale: run `make book` (python -m seqlib.book.findings)"


def test_the_book_includes_the_findings():
    assert "```{include} runs/_findings/intro.md" in (REPO / "book" / "intro.md").read_text()
    for family in findings.families(committed_profile()):
        page = (REPO / "book" / "tasks" / f"{family.name}.md").read_text()
        assert f"```{{include}} ../runs/_findings/{family.name}.md" in page, family.name


def test_the_text_page_states_extrapolation_and_griffins_claims(monkeypatch):
    import test_book_sources as src

    monkeypatch.setattr(findings, "unigram_bar", lambda: 4.75)
    models = {"griffin": (1.50, src.FALLS), "transformer": (1.52, src.RISES), "lstm": (5.1, {1024: 5.1, 4096: 5.1})}
    records = [r for m, (bits, curve) in models.items() for r in src.text_runs(m, bits, curve)]
    family = Family("text", ["text"], {m: REPO / "book" / "runs" / "text" / f"{m}.ipynb" for m in models})
    page = Findings("book", [family], records).task_page("text")
    line = next(p for p in page.split("\n\n") if p.startswith("**Past the training context**"))
    assert "improves: Griffin (-6.2%)" in line and "breaks: Transformer (+73.3%)" in line
    assert line.endswith("byte-unigram model (4.750 bits per byte): LSTM.")   # 5.1 bits: held to nothing
    assert "**text (~5M parameters), Griffin: agrees.**" in page
    assert "**text (past the training context), Transformer: agrees.**" in page
    assert "**text (~5M parameters), Hawk: not comparable.** Ours: no run." in page
    assert page.rstrip().endswith("the RoPE Transformer where it breaks.") and "within 5%" in page  # the rule, generated
