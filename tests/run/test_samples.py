"""A sample's record: its line in samples.jsonl names every field once, in a fixed order."""

from __future__ import annotations

import json
from dataclasses import fields

from harness.run.samples import Sample


def test_a_samples_line_has_every_field_in_order_and_reads_back() -> None:
    sample = Sample(task="t", doc_id="7", repeat=1, request_id="t/7/1", seed=3, prompt="Q?",
                    image_ids=("img",), fewshot_ids=("2",), target="yes", expected="yes",
                    choices=("no", "yes"), gold=1, response="yes", loglikelihoods=(-2.0, -1.0),
                    error=None, doc={"id": "7", "tags": ["a"]}, doc_hash="d", prompt_hash="p",
                    target_hash="h", verdicts={"j": {"status": "ok", "aligned": True}})
    line = sample.to_dict()
    assert list(line)[:6] == ["task", "doc_id", "repeat", "request_id", "seed", "prompt"]
    assert sorted(line) == sorted(f.name for f in fields(Sample))
    assert Sample.from_dict(json.loads(json.dumps(line))) == sample
    # The copy is the sample's own: editing it leaves the sample as it was.
    line["doc"]["id"] = "8"
    line["verdicts"]["j"]["aligned"] = False
    assert sample.doc["id"] == "7" and sample.verdicts["j"]["aligned"] is True
