"""Zero-shot benchmarks of a byte-level language model (the hook of the text chapter).

The benchmarks of the language-modelling literature (LAMBADA, HellaSwag, PIQA, ...) need their data
sets, which this book's machines cannot fetch; a user who has them converts each to JSON lines of
``{"context": str, "choices": [str, ...], "answer": int}`` and runs ``python -m seqlib downstream
--run <run id> --items <file>`` on a stored run of the ``text`` task.

Scoring, by the log-likelihood of each choice's UTF-8 bytes after the context's (the document token
first, as every training document): an item with several choices is right when its answer has the
highest total log-likelihood (``accuracy``) and, separately, the highest per byte (``accuracy_norm``,
the length-normalised variant); an item with one choice (LAMBADA's target word) is right when greedy
decoding reproduces every byte of it (``greedy_match``). ``bits`` is the mean over items of the
answer's bits per byte.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import torch

from seqlib.tasks.text import DOC


def read_items(path: str | Path) -> list[dict]:
    """The items of a JSON-lines file, each checked: a ValueError names the line and the problem."""
    items = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not JSON ({e.msg})") from None
        choices = item.get("choices") if isinstance(item, dict) else None
        if not (isinstance(choices, list) and choices and all(isinstance(c, str) and c for c in choices)):
            raise ValueError(f"{path}:{n}: 'choices' must be a list of non-empty strings")
        if not isinstance(item.get("context"), str):
            raise ValueError(f"{path}:{n}: 'context' must be a string")
        if not (isinstance(item.get("answer"), int) and 0 <= item["answer"] < len(choices)):
            raise ValueError(f"{path}:{n}: 'answer' must be the index of one of its {len(choices)} choices")
        items.append(item)
    if not items:
        raise ValueError(f"{path}: no items")
    return items


def choice_scores(model: torch.nn.Module, context: str, choice: str, device: torch.device) -> tuple[float, int, bool]:
    """(log-likelihood in nats, bytes, greedy match) of ``choice``'s bytes after ``context``'s."""
    head, tail = [DOC, *context.encode()], list(choice.encode())
    tokens = torch.tensor([head + tail], device=device)
    with torch.no_grad():
        logits = model(tokens[:, :-1], torch.arange(tokens.shape[1] - 1, device=device)[None])[0].float()
    scored = logits[0, len(head) - 1:]
    target = tokens[0, len(head):]
    logp = torch.log_softmax(scored, -1).gather(1, target[:, None]).sum()
    return float(logp), len(tail), bool((scored.argmax(-1) == target).all())


def score_items(model: torch.nn.Module, items: list[dict], device: torch.device) -> pd.DataFrame:
    """One row per item: its choices' scores and whether the model was right (module docstring)."""
    was_training = model.training
    model.eval()
    rows = []
    try:
        for i, item in enumerate(items):
            scores = [choice_scores(model, item["context"], c, device) for c in item["choices"]]
            answer = scores[item["answer"]]
            row = {"item": i, "choices": len(scores), "bits": -answer[0] / answer[1] / math.log(2)}
            if len(scores) == 1:
                row["greedy_match"] = float(answer[2])
            else:
                row["accuracy"] = float(max(range(len(scores)), key=lambda j: scores[j][0]) == item["answer"])
                row["accuracy_norm"] = float(
                    max(range(len(scores)), key=lambda j: scores[j][0] / scores[j][1]) == item["answer"])
            rows.append(row)
    finally:
        model.train(was_training)
    return pd.DataFrame(rows)


def summary(per_item: pd.DataFrame) -> dict[str, float]:
    """The means over items of each score (``n``: the items)."""
    return {"n": len(per_item), **{c: float(per_item[c].mean())
                                  for c in ("accuracy", "accuracy_norm", "greedy_match", "bits") if c in per_item}}
