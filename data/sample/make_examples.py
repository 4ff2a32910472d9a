"""Write the README's example inputs from the sample corpus: heldout.csv, new.jsonl and unlabelled.jsonl.

Run from the project root: `.venv/bin/python data/sample/make_examples.py` (it builds the sample dataset when needed).
The articles are the sample's own, raw as `articles.jsonl` has them, picked by the split of
`configs/data/sample.yaml`, so that a model trained on the sample has seen none of them:

- `heldout.csv`: the test split, with other column names than taawun's (`body` for the text, `label` for the final
  topic), for `taawun evaluate ... --field text=body --field topic=label`;
- `new.jsonl`: the test split without labels, for `taawun predict`;
- `unlabelled.jsonl`: the validation and test splits without labels, for `taawun annotate suggest`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from train.data.build import open_dataset
from train.files import write_text_atomically

FOLDER = Path("data/sample")
FIELDS = ["id", "title", "text", "source", "date"]


def main() -> None:
    """Write the three files beside the sample corpus."""
    dataset, _, _ = open_dataset("configs/data/sample.yaml")
    raw = {article["id"]: article for article in map(json.loads, (FOLDER / "articles.jsonl").read_text(
        encoding="utf-8").splitlines())}
    test, validation = dataset["test"], dataset["validation"]
    topics = test.features["topic"].names
    heldout = [{"id": i, "title": raw[i]["title"], "body": raw[i]["text"], "source": raw[i]["source"],
                "date": raw[i]["date"], "label": topics[label]} for i, label in zip(test["id"], test["topic"])]
    write_text_atomically(FOLDER / "heldout.csv", _csv(heldout))
    write_text_atomically(FOLDER / "new.jsonl", _jsonl([raw[i] for i in test["id"]]))
    write_text_atomically(FOLDER / "unlabelled.jsonl", _jsonl([raw[i] for i in [*validation["id"], *test["id"]]]))


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _jsonl(articles: list[dict]) -> str:
    return "".join(json.dumps({key: article[key] for key in FIELDS}, ensure_ascii=False) + "\n" for article in articles)


if __name__ == "__main__":
    main()
