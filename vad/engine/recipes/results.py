"""The results table of a benchmark run: our headline number beside the published anchors, how it was obtained
(protocol, split sizes, features), and the commands that repeat it; as Markdown for people and JSON for tools."""
from __future__ import annotations

import math
import os
from pathlib import Path

from vad.engine.recipes.anchors import FOLLOWED_NOTE, anchors_for
from vad.engine.recipes.datasets import Recipe
from vad.io import write_json_atomic, write_text_atomic

RESULTS_MD = "results.md"
RESULTS_JSON = "results.json"


def _pct(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"


def results_document(recipe: Recipe, metrics: dict, run: dict, commands: list[str]) -> dict:
    """The JSON results: ``ours`` (headline metric and every EvalReport field), the anchors with their
    citations, the run (protocol, splits, features, failures) and the equivalent commands."""
    return {
        "benchmark": recipe.name, "dataset": recipe.title, "metric": recipe.metric_name,
        "ours": {"value": metrics.get(recipe.metric), **metrics},
        "anchors": [{"method": a.method, "venue": a.venue, "features": a.features,
                     "value": a.results[recipe.name] / 100, "citation": a.citation} for a in anchors_for(recipe.name)],
        "not_listed": FOLLOWED_NOTE,
        "run": run,
        "commands": commands,
    }


def results_markdown(doc: dict) -> str:
    """``results.md``: the table, what our row is, and the commands."""
    run, ours = doc["run"], doc["ours"]
    metric = doc["metric"]
    lines = [f"# {doc['dataset']}: {metric} (%)", "",
             f"| method | venue | features | {metric} (%) |", "|---|---|---|---|",
             f"| **vadgraph (this run)** | {run['date']} | {run['features']} | **{_pct(ours['value'])}** |"]
    lines += [f"| {a['method']} | {a['venue']} | {a['features']} | {_pct(a['value'])} |" for a in doc["anchors"]]
    lines += ["", f"Also on this run's test split: frame AUC {_pct(ours.get('auc'))}, frame AP {_pct(ours.get('ap'))}, "
              f"leak AUC {_pct(ours.get('leak_auc'))} (50 = scores do not single out whole abnormal videos).", "",
              f"Protocol: {run['protocol']}", "", doc["not_listed"], ""]
    lines += [f"- {note}" for note in run.get("notes", [])]
    lines += ["", "Sources of the published numbers:", ""]
    lines += [f"- {a['method']}: {a['citation']}" for a in doc["anchors"]]
    lines += ["", "The commands this run is equivalent to:", "", "```bash", *doc["commands"], "```", ""]
    return "\n".join(lines)


def write_results(out_dir: str | os.PathLike, doc: dict) -> tuple[Path, Path]:
    """Write ``results.md`` and ``results.json`` atomically; their paths."""
    out = Path(out_dir)
    write_json_atomic(out / RESULTS_JSON, doc)
    write_text_atomic(out / RESULTS_MD, results_markdown(doc))
    return out / RESULTS_MD, out / RESULTS_JSON
