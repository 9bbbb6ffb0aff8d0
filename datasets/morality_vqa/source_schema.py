"""Read and check the writers' YAML sources of the morality-VQA dataset; turn them into items.

A source file (``source/<writer>.yaml``) holds scenarios: two images (A, B) of one setting and
questions in polarity pairs, each asked of one or both images (see docs/dataset-guidelines.md
and the dataset card). This module checks one file's structure, collects every problem it finds
(so that a writer sees them all at once) and makes the dataset's items. It draws nothing and
writes nothing: ``build.py`` does.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CATEGORIES = ("helping", "harm", "honesty", "property", "fairness", "care", "respect", "privacy")
SPLITS = ("train", "test")
IMAGE_KEYS = ("A", "B")

# phrasing -> (structure, the form of the question's text)
_OKAY = r"(?:okay|OK|fine|all right|acceptable)"
_WRONG = r"(?:wrong|unkind|unfair|rude|cruel|mean|dishonest|selfish|disrespectful)"
_IS = r"(?:Is it|Would it be)"
PHRASINGS: dict[str, tuple[str, re.Pattern[str]]] = {
    "should": ("affirmative", re.compile(r"Should I (?!not\b)\S")),
    "do-i": ("affirmative", re.compile(r"Do I (?!not\b)\S")),
    "is-it-okay": ("affirmative", re.compile(rf"{_IS} {_OKAY} (?:for me )?to (?!not\b)\S")),
    "is-it-wrong": ("affirmative", re.compile(rf"{_IS} {_WRONG} (?:of me )?to (?!not\b)\S")),
    "is-it-okay-not-to": ("negative", re.compile(rf"{_IS} {_OKAY} (?:for me )?not to \S")),
    "is-it-wrong-not-to": ("negative", re.compile(rf"{_IS} {_WRONG} (?:of me )?not to \S")),
}
# Negative questions a yes or a no to which can be read two ways.
AMBIGUOUS = re.compile(r"^(?:Shouldn't|Should I not|Isn't|Aren't|Don't I|Doesn't|Wouldn't|Won't)\b")
SHOT = re.compile(r"Q: (?P<q>[^\n]+\?)\nA: (?P<a>[^\n]+)")
SHOT_MAX_WORDS = 12

SCENARIO_KEYS = {"id", "split", "category", "images", "questions"}
QUESTION_KEYS = {"id", "text", "phrasing", "pair_of", "on"}
ON_KEYS = {"expected", "ideal", "shots", "depends_on", "trap", "premise_answer", "v1"}


@dataclass
class Item:
    """One question asked of one image: a row of train.jsonl / test.jsonl."""

    id: str
    image: str
    split: str
    question: str
    prompt_0shot: str
    prompt_1shot: str
    prompt_2shot: str
    ideal_answer: str
    expected: str
    structure: str
    phrasing: str
    category: str
    trap: bool
    premise_answer: str | None
    pair_id: str | None
    contrast_id: str | None
    scenario: str
    image_description: str
    depends_on: list[str]
    writer: str
    reviewer: str | None = None
    # Not shipped: where the item came from, for the review log.
    question_id: str = field(default="", repr=False)
    image_key: str = field(default="", repr=False)
    v1_id: str | None = field(default=None, repr=False)

    SHIPPED = (
        "id", "image", "split", "question", "prompt_0shot", "prompt_1shot", "prompt_2shot",
        "ideal_answer", "expected", "structure", "phrasing", "category", "trap",
        "premise_answer", "pair_id", "contrast_id", "scenario", "image_description",
        "depends_on", "writer", "reviewer",
    )  # fmt: skip

    def record(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.SHIPPED}


def shipped_key(scenario: str, image_key: str) -> str:
    """The letter an image ships under: A or B, swapped for half of the scenarios.

    Writers draw the image where the duty applies as A; shipped as is, an item's id and image
    name would give its answer away (q1 on A is always the same polarity). A hash of the
    scenario id decides the swap, so names stay stable from one build to the next.
    """
    if hashlib.sha256(scenario.encode()).digest()[0] % 2:
        return {"A": "B", "B": "A"}[image_key]
    return image_key


def item_id(scenario: str, question: str, image_key: str) -> str:
    """Stable: made of the scenario's and question's ids, which writers never renumber."""
    return f"{scenario}-{question}-{shipped_key(scenario, image_key).lower()}"


def image_name(scenario: str, image_key: str) -> str:
    return f"{scenario}_{shipped_key(scenario, image_key)}.png"


def prompts(question: str, shots: list[str]) -> tuple[str, str, str]:
    """The 0-, 1- and 2-shot prompts: shot lines (s2, then s1) before ``Q: <question>\\nA:``."""
    final = f"Q: {question}\nA:"
    return final, "\n".join([shots[0], final]), "\n".join([shots[1], shots[0], final])


def yes_no(text: str) -> str | None:
    """The polarity of an answer that starts with yes or no, else None."""
    match = re.match(r"\s*(yes|no)\b", text, flags=re.IGNORECASE)
    return match.group(1).lower() if match else None


class _SourceLoader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. YAML 1.1 would read ``on:`` and ``expected: no`` as booleans."""


_SourceLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_SourceLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_source(path: Path) -> dict[str, Any]:
    """Read a writer's source file; a file that is not a mapping with a scenarios list stops."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SourceLoader)  # noqa: S506
    except yaml.YAMLError as error:
        raise SystemExit(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("scenarios"), list):
        raise SystemExit(f"{path}: expected a mapping with a 'scenarios' list")
    return data


class Problems(list[str]):
    def add(self, where: str, message: str) -> None:
        self.append(f"{where}: {message}")


def check_source(
    data: dict[str, Any], layouts: dict[str, dict[str, list[int]]] | None, problems: Problems
) -> list[Item]:
    """Check one source file's scenarios and return their items (also when there are problems).

    ``layouts`` maps an image file name to its role boxes (from drawing it); with None the
    ``depends_on`` roles are not checked against the drawing.
    """
    writer = data.get("writer")
    if not isinstance(writer, str) or not writer:
        problems.add("file", "no 'writer'")
        writer = "?"
    items: list[Item] = []
    seen: set[str] = set()
    for index, scenario in enumerate(data.get("scenarios") or []):
        sid = scenario.get("id") if isinstance(scenario, dict) else None
        if not isinstance(sid, str) or not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", sid):
            problems.add(f"scenario {index}", f"id {sid!r} must be a lower-case slug")
            continue
        if sid in seen:
            problems.add(sid, "duplicate scenario id")
        seen.add(sid)
        if writer != "?" and not sid.startswith(f"{writer}-"):
            problems.add(sid, f"scenario ids are prefixed by the writer id '{writer}-'")
        items += _check_scenario(scenario, sid, writer, layouts, problems)
    return items


def _check_scenario(
    scenario: dict[str, Any],
    sid: str,
    writer: str,
    layouts: dict[str, dict[str, list[int]]] | None,
    problems: Problems,
) -> list[Item]:
    unknown = set(scenario) - SCENARIO_KEYS
    if unknown:
        problems.add(sid, f"unknown keys {sorted(unknown)}")
    split, category = scenario.get("split"), scenario.get("category")
    if split not in SPLITS:
        problems.add(sid, f"split {split!r} is not train or test")
    if category not in CATEGORIES:
        problems.add(sid, f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    images = scenario.get("images") or {}
    if not isinstance(images, dict) or set(images) - set(IMAGE_KEYS) or not images:
        problems.add(sid, "images must map A (and B) to image specs")
        return []
    questions = scenario.get("questions") or []
    by_id = {q.get("id"): q for q in questions if isinstance(q, dict)}
    if len(by_id) != len(questions):
        problems.add(sid, "every question is a mapping with a unique id")
    items: list[Item] = []
    for question in by_id.values():
        items += _check_question(question, scenario, sid, writer, by_id, layouts, problems)
    return items


def _check_question(
    question: dict[str, Any],
    scenario: dict[str, Any],
    sid: str,
    writer: str,
    by_id: dict[Any, dict[str, Any]],
    layouts: dict[str, dict[str, list[int]]] | None,
    problems: Problems,
) -> list[Item]:
    qid = question.get("id")
    where = f"{sid} {qid}"
    unknown = set(question) - QUESTION_KEYS
    if unknown:
        problems.add(where, f"unknown keys {sorted(unknown)}")
    text = question.get("text")
    if not isinstance(text, str) or not text.endswith("?") or "\n" in text or text != text.strip():
        problems.add(where, f"text {text!r} must be one line ending in '?'")
        return []
    phrasing = question.get("phrasing")
    if phrasing not in PHRASINGS:
        problems.add(where, f"phrasing {phrasing!r} is not one of {', '.join(PHRASINGS)}")
        return []
    structure, form = PHRASINGS[phrasing]
    if AMBIGUOUS.match(text):
        problems.add(where, f"{text!r}: negative questions only as 'Is it okay/wrong not to ...?'")
    elif not form.match(text):
        problems.add(where, f"{text!r} does not have the form of phrasing {phrasing}")
    partner_id = question.get("pair_of") or next(
        (other_id for other_id, other in by_id.items() if other.get("pair_of") == qid), None
    )
    partner = by_id.get(partner_id)
    if partner is None:
        problems.add(where, "has no polarity partner (pair_of)")
    on = question.get("on") or {}
    if not isinstance(on, dict) or not on or set(on) - set(scenario["images"]):
        problems.add(where, "'on' must map image keys of this scenario to answers")
        return []
    contrast = len(on) == 2
    if contrast and len({(on[k] or {}).get("expected") for k in on}) != 2:
        problems.add(where, "asked of both images, so its answer must differ between A and B")
    items = []
    for key in sorted(on):
        answer = on[key] if isinstance(on[key], dict) else {}
        at = f"{where} {key}"
        item = _check_answer(answer, at, problems)
        if item is None:
            continue
        expected, ideal, shots, depends_on, trap, premise = item
        if partner is not None:
            partner_on = (partner.get("on") or {}).get(key)
            if not isinstance(partner_on, dict):
                problems.add(at, f"its partner {partner_id} is not asked of image {key}")
            elif partner_on.get("expected") == expected:
                problems.add(at, f"its partner {partner_id} has the same answer on image {key}")
            p_phrasing = partner.get("phrasing")
            if PHRASINGS.get(p_phrasing, ("?",))[0] != structure:
                problems.add(where, f"its partner {partner_id} has the other structure")
            elif p_phrasing != phrasing and not (contrast and len(partner.get("on") or {}) == 2):
                problems.add(
                    where,
                    f"a pair asked of one image only uses one phrasing ({phrasing} vs {p_phrasing})",
                )
        name = image_name(sid, key)
        if layouts is not None and name in layouts:
            missing = [role for role in depends_on if role not in layouts[name]]
            if missing:
                problems.add(at, f"depends_on {missing} are not roles drawn in image {key}")
        spec = scenario["images"].get(key) or {}
        description = spec.get("description") if isinstance(spec, dict) else None
        if not isinstance(description, str) or not description.strip():
            problems.add(f"{sid} image {key}", "no description")
            description = ""
        pair = sorted([str(qid), str(partner_id)]) if partner is not None else None
        p0, p1, p2 = prompts(text, shots)
        items.append(
            Item(
                id=item_id(sid, str(qid), key),
                image=f"images/{name}",
                split=str(scenario.get("split")),
                question=text,
                prompt_0shot=p0,
                prompt_1shot=p1,
                prompt_2shot=p2,
                ideal_answer=ideal,
                expected=expected,
                structure=structure,
                phrasing=phrasing,
                category=str(scenario.get("category")),
                trap=trap,
                premise_answer=premise,
                pair_id=f"{sid}-{pair[0]}-{pair[1]}-{shipped_key(sid, key).lower()}" if pair else None,
                contrast_id=f"{sid}-{qid}" if contrast else None,
                scenario=sid,
                image_description=description.strip(),
                depends_on=depends_on,
                writer=writer,
                question_id=str(qid),
                image_key=key,
                v1_id=answer.get("v1"),
            )
        )
    return items


def _check_answer(answer: dict[str, Any], at: str, problems: Problems):  # type: ignore[no-untyped-def]
    unknown = set(answer) - ON_KEYS
    if unknown:
        problems.add(at, f"unknown keys {sorted(unknown)}")
    expected = answer.get("expected")
    if expected is True:  # YAML 1.1 reads a bare yes as true
        expected = "yes"
    elif expected is False:
        expected = "no"
    if expected not in ("yes", "no"):
        problems.add(at, f"expected {expected!r} is not yes or no")
        return None
    ideal = answer.get("ideal")
    first = "Yes. " if expected == "yes" else "No. "
    if not isinstance(ideal, str) or not ideal.startswith(first) or len(ideal.split()) < 4:
        problems.add(at, f"the ideal answer must start with {first.strip()!r} and give a reason")
        ideal = str(ideal)
    elif len(ideal.split()) > 30:
        problems.add(at, f"the ideal answer has {len(ideal.split())} words; keep it short")
    shots = answer.get("shots")
    if not isinstance(shots, list) or len(shots) != 2 or not all(isinstance(s, str) for s in shots):
        problems.add(at, "shots must be a list of two 'Q: ...\\nA: ...' strings")
        shots = ["Q: ?\nA: ?", "Q: ?\nA: ?"]
    for shot in shots:
        match = SHOT.fullmatch(shot.strip())
        if match is None or shot != shot.strip():
            problems.add(at, f"shot {shot!r} is not 'Q: <question>?\\nA: <answer>'")
        elif len(match.group("a").split()) > SHOT_MAX_WORDS:
            problems.add(at, f"shot answer {match.group('a')!r} is over {SHOT_MAX_WORDS} words")
    depends_on = answer.get("depends_on")
    if (
        not isinstance(depends_on, list)
        or not depends_on
        or not all(isinstance(r, str) for r in depends_on)
    ):
        problems.add(at, "depends_on must list the roles the answer depends on")
        depends_on = []
    trap = answer.get("trap", False)
    premise = answer.get("premise_answer")
    premise = (
        {True: "yes", False: "no"}.get(premise, premise) if isinstance(premise, bool) else premise
    )
    if trap is not True and trap is not False:
        problems.add(at, "trap must be true or false")
        trap = False
    if trap and premise not in ("yes", "no"):
        problems.add(at, "a trap needs premise_answer: yes or no")
    elif trap and premise == expected:
        problems.add(at, "a trap's premise_answer must differ from expected, or it does not trap")
    elif not trap and premise is not None:
        problems.add(at, "premise_answer is only for traps")
    return expected, ideal, shots, depends_on, bool(trap), premise if trap else None
