"""Build the morality-VQA dataset from the writers' sources and the reviews.

Reads every ``source/*.yaml`` (one per writer), the reviewers' verdicts in
``source/reviews/*.csv`` and the lead's review of v1's items in ``source/v1_items_review.csv``;
draws every image into ``images/``; writes ``layout.json``, ``provenance.csv``,
``train.jsonl``, ``test.jsonl``, ``review_log.csv`` and the counts tables of ``README.md``;
prints a summary. Structural problems (a pair without opposite answers, a trap that does not
trap, a question's element outside the centre crop ...) are all listed and stop the build.

    python datasets/morality_vqa/build.py                          # build from every source
    python datasets/morality_vqa/build.py --check source/w1.yaml   # check one file, write nothing

The harness never imports this script.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import audits  # noqa: E402
from compose_scenes import SCENE_SIZE, layout_json, render_image, save_png  # noqa: E402
from source_schema import SPLITS, Item, Problems, check_source, image_name, load_source  # noqa: E402

SOURCE_DIR = HERE / "source"
REVIEW_DIR = SOURCE_DIR / "reviews"
V1_REVIEW = SOURCE_DIR / "v1_items_review.csv"
IMAGES_DIR = HERE / "images"
CARD = HERE / "README.md"
CROP_MARGIN = 8
REVIEW_COLUMNS = ("scenario", "question", "image", "reviewer", "verdict", "reason")
LOG_COLUMNS = (
    "item", "v1_id", "scenario", "question", "image", "writer", "reviewer", "verdict", "reason",
)  # fmt: skip
CARD_BEGIN = "<!-- counts: written by build.py -->"
CARD_END = "<!-- end of counts -->"


def crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The centred square that resize-shorter-side-then-centre-crop keeps, in image pixels."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def check_crop(
    items: list[Item],
    layouts: dict[str, dict[str, list[int]]],
    problems: Problems,
    warnings: Problems,
) -> None:
    x0, y0, x1, y1 = crop_box(*SCENE_SIZE)
    for item in items:
        boxes = layouts.get(item.image.removeprefix("images/"), {})
        for role in item.depends_on:
            box = boxes.get(role)
            if box is None:
                continue
            if box[0] < x0 or box[1] < y0 or box[2] > x1 or box[3] > y1:
                problems.add(item.id, f"{role} at {box} is outside the centre crop x {x0}..{x1}")
            elif box[0] < x0 + CROP_MARGIN or box[2] > x1 - CROP_MARGIN:
                warnings.add(
                    item.id, f"{role} at {box} is within {CROP_MARGIN} px of the crop's edge"
                )


def read_reviews() -> tuple[
    dict[tuple[str, str, str], dict[str, str]], list[dict[str, str]], Problems
]:
    """Every reviewer verdict by (scenario, question, image); the last row for an item wins."""
    problems = Problems()
    verdicts: dict[tuple[str, str, str], dict[str, str]] = {}
    rows: list[dict[str, str]] = []
    for path in sorted(REVIEW_DIR.glob("*.csv")) if REVIEW_DIR.exists() else []:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != REVIEW_COLUMNS:
                problems.add(path.name, f"columns must be {','.join(REVIEW_COLUMNS)}")
                continue
            for line, row in enumerate(reader, start=2):
                row = {key: (value or "").strip() for key, value in row.items()}
                if row["verdict"] not in ("ok", "changed", "dropped"):
                    problems.add(
                        f"{path.name}:{line}",
                        f"verdict {row['verdict']!r} is not ok, changed or dropped",
                    )
                    continue
                if not row["reviewer"] or not row["reason"] and row["verdict"] != "ok":
                    problems.add(f"{path.name}:{line}", "needs a reviewer, and a reason unless ok")
                images = [row["image"]] if row["image"] else ["A", "B"]
                for image in images:
                    verdicts[(row["scenario"], row["question"], image)] = row
                rows.append(row)
    return verdicts, rows, problems


def read_v1_review() -> list[dict[str, str]]:
    if not V1_REVIEW.exists():
        return []
    with V1_REVIEW.open(newline="", encoding="utf-8") as handle:
        return [{k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(handle)]


def check_v1_review(items: list[Item], problems: Problems) -> None:
    """Every v1 item has one verdict; the kept and changed ones are carried by v2 items."""
    rows = read_v1_review()
    carried = {item.v1_id for item in items if item.v1_id}
    verdicts = {row["v1_id"]: row["verdict"] for row in rows}
    if rows and len(verdicts) != len(rows):
        problems.add(V1_REVIEW.name, "a v1 item is reviewed twice")
    for v1_id, verdict in verdicts.items():
        if verdict not in ("kept", "changed", "dropped"):
            problems.add(v1_id, f"v1 verdict {verdict!r} is not kept, changed or dropped")
        elif (verdict != "dropped") != (v1_id in carried):
            problems.add(
                v1_id,
                f"v1 verdict is {verdict} but {'no' if verdict != 'dropped' else 'a'} v2 item carries it",
            )
    for v1_id in carried - set(verdicts):
        problems.add(v1_id, "a v2 item carries this v1 item, which has no verdict in the v1 review")


def check_structure(items: list[Item], problems: Problems) -> None:
    """Pairs and contrasts are whole after drops; ids and images are unique; splits are apart."""
    ids = Counter(item.id for item in items)
    for duplicate in [i for i, n in ids.items() if n > 1]:
        problems.add(duplicate, "duplicate item id")
    for key, kind in (("pair_id", "polarity pair"), ("contrast_id", "image-contrast pair")):
        groups: dict[str, list[Item]] = defaultdict(list)
        for item in items:
            if getattr(item, key):
                groups[getattr(item, key)].append(item)
        for group_id, members in groups.items():
            if len(members) != 2:
                problems.add(
                    group_id, f"{kind} has {len(members)} item(s), not 2 (a partner dropped?)"
                )
            elif members[0].expected == members[1].expected:
                problems.add(group_id, f"{kind} items have the same answer")
            elif len({m.split for m in members}) != 1:
                problems.add(group_id, f"{kind} straddles the splits")
            elif key == "contrast_id" and members[0].question != members[1].question:
                problems.add(group_id, "image-contrast items must ask the same text")
            elif key == "pair_id" and members[0].image != members[1].image:
                problems.add(group_id, "polarity pair items must be about one image")
    splits_of_image: dict[str, set[str]] = defaultdict(set)
    for item in items:
        splits_of_image[item.image].add(item.split)
    for image, splits in splits_of_image.items():
        if len(splits) > 1:
            problems.add(image, "image is in both splits")


def load_all(
    sources: list[Path], *, reviews: bool = True
) -> tuple[
    list[Item],
    list[Item],
    dict[str, dict[str, list[int]]],
    dict[str, object],
    Problems,
    Problems,
    list[dict[str, str]],
]:
    """Check and draw the sources; apply reviews. Returns items, dropped items, layouts, images, problems, warnings, review rows."""
    problems, warnings = Problems(), Problems()
    layouts: dict[str, dict[str, list[int]]] = {}
    images: dict[str, object] = {}
    items: list[Item] = []
    scenario_sources: dict[str, str] = {}
    for path in sources:
        data = load_source(path)
        for scenario in data["scenarios"]:
            if not isinstance(scenario, dict) or not isinstance(scenario.get("images"), dict):
                continue
            sid = str(scenario.get("id"))
            if sid in scenario_sources:
                problems.add(sid, f"scenario id used in {scenario_sources[sid]} and {path.name}")
            scenario_sources[sid] = path.name
            for key, spec in sorted(scenario["images"].items()):
                try:
                    image, layout = render_image(spec, f"{sid} image {key}")
                except SystemExit as error:
                    problems.append(f"{path.name}: {error}")
                    continue
                images[image_name(sid, key)] = image
                layouts[image_name(sid, key)] = layout
        file_problems = Problems()
        items += check_source(data, layouts, file_problems)
        problems += [f"{path.name}: {p}" for p in file_problems]
    review_rows: list[dict[str, str]] = []
    dropped: list[Item] = []
    if reviews:
        verdicts, review_rows, review_problems = read_reviews()
        problems += review_problems
        kept = []
        for item in items:
            row = verdicts.get((item.scenario, item.question_id, item.image_key))
            if row is not None:
                item.reviewer = row["reviewer"]
                if row["reviewer"] == item.writer:
                    problems.add(item.id, f"reviewed by its own writer {item.writer}")
                if row["verdict"] == "dropped":
                    dropped.append(item)
                    continue
            kept.append(item)
        items = kept
    check_structure(items, problems)
    if reviews and any(path.parent == SOURCE_DIR for path in sources):
        check_v1_review(items, problems)
    check_crop(items, layouts, problems, warnings)
    return items, dropped, layouts, images, problems, warnings, review_rows


# ---------------------------------------------------------------- summaries


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def counts_tables(items: list[Item | dict]) -> str:
    """The card's counts tables (markdown), from items or their shipped records."""
    records = [i.record() if isinstance(i, Item) else i for i in items]
    groups = [(split, [r for r in records if r["split"] == split]) for split in SPLITS]
    groups.append(("all", records))
    out = [
        "| split | items | images | scenarios | yes | no | affirmative | negative | traps | in polarity pairs | image-contrast pairs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in groups:
        out.append(
            f"| {name} | {len(rows)} | {len({r['image'] for r in rows})} | {len({r['scenario'] for r in rows})} "
            f"| {sum(r['expected'] == 'yes' for r in rows)} | {sum(r['expected'] == 'no' for r in rows)} "
            f"| {sum(r['structure'] == 'affirmative' for r in rows)} | {sum(r['structure'] == 'negative' for r in rows)} "
            f"| {sum(r['trap'] for r in rows)} | {sum(r['pair_id'] is not None for r in rows)} "
            f"| {len({r['contrast_id'] for r in rows if r['contrast_id']})} |"
        )
    phrasings = sorted({r["phrasing"] for r in records})
    out += [
        "",
        "| phrasing (items, % yes) | " + " | ".join(phrasings) + " |",
        "|---|" + "---|" * len(phrasings),
    ]
    for name, rows in groups:
        cells = []
        for phrasing in phrasings:
            sub = [r for r in rows if r["phrasing"] == phrasing]
            cells.append(f"{len(sub)} ({_pct(sum(r['expected'] == 'yes' for r in sub), len(sub))})")
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    categories = sorted({r["category"] for r in records})
    out += ["", "| category | " + " | ".join(categories) + " |", "|---|" + "---|" * len(categories)]
    for name, rows in groups:
        per = Counter(r["category"] for r in rows)
        out.append(f"| {name} | " + " | ".join(str(per[c]) for c in categories) + " |")
    writers = sorted({r["writer"] for r in records})
    out += ["", "| writer | " + " | ".join(writers) + " |", "|---|" + "---|" * len(writers)]
    for name, rows in groups:
        per = Counter(r["writer"] for r in rows)
        out.append(f"| {name} | " + " | ".join(str(per[w]) for w in writers) + " |")
    return "\n".join(out)


def writer_table(items: list[Item]) -> str:
    """Per writer: what the brief asks of each (16 scenarios, >= 8 traps with >= 4 in test, ...)."""
    out = [
        "| writer | scenarios (train/test) | items | traps (in test) | negative | one-image items | reviewed |",
        "|---|---|---|---|---|---|---|",
    ]
    for writer in sorted({i.writer for i in items}):
        mine = [i for i in items if i.writer == writer]
        scenarios = {(i.scenario, i.split) for i in mine}
        train = sum(split == "train" for _, split in scenarios)
        out.append(
            f"| {writer} | {len(scenarios)} ({train}/{len(scenarios) - train}) | {len(mine)} "
            f"| {sum(i.trap for i in mine)} ({sum(i.trap and i.split == 'test' for i in mine)}) "
            f"| {_pct(sum(i.structure == 'negative' for i in mine), len(mine))} "
            f"| {sum(i.contrast_id is None for i in mine)} | {sum(bool(i.reviewer) for i in mine)} |"
        )
    return "\n".join(out)


def audit_table(items: list[Item]) -> str:
    records = [i.record() for i in items]
    train = [r for r in records if r["split"] == "train"]
    test = [r for r in records if r["split"] == "test"]
    return audits.summary(train, test) if train and test else "(audits need both splits)"


# ---------------------------------------------------------------- writing


def font_version() -> str:
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "fonts-noto-color-emoji"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return result.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown version"


def provenance_rows(items: list[Item], sources: dict[str, str]) -> list[dict[str, str]]:
    version = font_version()
    rows = []
    for image in sorted({item.image for item in items}):
        source_item = next(item for item in items if item.image == image)
        scenario, key, writer = source_item.scenario, source_item.image_key, source_item.writer
        rows.append(
            {
                "file": image,
                "kind": "composed",
                "source": f"Debian package fonts-noto-color-emoji {version}, /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
                "author": f"Composed by the vlm-morality-bench authors (writer {writer}); emoji artwork Copyright 2013-2017 Google Inc. (Noto Emoji)",
                "licence": "Apache-2.0 (emoji artwork; see LICENSES/Apache-2.0.txt); the Noto Color Emoji font itself is OFL-1.1",
                "how_made": f"compose_scenes.py from source/{sources[scenario]} scenario {scenario} image {key}; drawn with Pillow from emoji glyphs and plain shapes, 512x384 palette PNG",
            }
        )
    return rows


def review_log(
    items: list[Item], dropped: list[Item], review_rows: list[dict[str, str]]
) -> list[dict[str, str]]:
    """v1's items (kept, changed or dropped) and every v2 item's review, one row each."""
    by_v1: dict[str, list[str]] = defaultdict(list)
    for item in items:
        if item.v1_id:
            by_v1[item.v1_id].append(item.id)
    log = []
    for row in read_v1_review():
        log.append(
            {
                "item": " ".join(by_v1.get(row["v1_id"], [])),
                "v1_id": row["v1_id"], "scenario": "", "question": row["question"], "image": row["image"],
                "writer": "v1", "reviewer": "lead", "verdict": row["verdict"], "reason": row["reason"],
            }
        )  # fmt: skip
    by_key = {(r["scenario"], r["question"], r["image"]): r for r in review_rows}
    for item in sorted(items + dropped, key=lambda i: i.id):
        row = by_key.get((item.scenario, item.question_id, item.image_key)) or by_key.get(
            (item.scenario, item.question_id, "")
        )
        log.append(
            {
                "item": item.id, "v1_id": item.v1_id or "", "scenario": item.scenario,
                "question": item.question, "image": item.image_key, "writer": item.writer,
                "reviewer": row["reviewer"] if row else "", "verdict": row["verdict"] if row else "unreviewed",
                "reason": row["reason"] if row else "",
            }
        )  # fmt: skip
    return log


def write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def write_card_tables(tables: str) -> None:
    card = CARD.read_text(encoding="utf-8")
    if CARD_BEGIN not in card or CARD_END not in card:
        print(
            f"warning: {CARD.name} has no '{CARD_BEGIN}' ... '{CARD_END}' block; tables not written"
        )
        return
    head, rest = card.split(CARD_BEGIN, 1)
    _, tail = rest.split(CARD_END, 1)
    CARD.write_text(f"{head}{CARD_BEGIN}\n{tables}\n{CARD_END}{tail}", encoding="utf-8")


def write_dataset(
    items: list[Item],
    dropped: list[Item],
    layouts: dict,
    images: dict,
    review_rows: list[dict[str, str]],
    sources: dict[str, str],
) -> None:
    IMAGES_DIR.mkdir(exist_ok=True)
    used = {item.image.removeprefix("images/") for item in items}
    for stale in IMAGES_DIR.iterdir():
        if stale.suffix.lower() in (".png", ".jpg", ".jpeg") and stale.name not in used:
            stale.unlink()
    for name in sorted(used):
        save_png(images[name], IMAGES_DIR / name)
    (HERE / "layout.json").write_text(
        layout_json({f"images/{n}": layouts[n] for n in sorted(used)})
    )
    columns = ("file", "kind", "source", "author", "licence", "how_made")
    write_csv(HERE / "provenance.csv", columns, provenance_rows(items, sources))
    for split in SPLITS:
        with (HERE / f"{split}.jsonl").open("w", encoding="utf-8") as handle:
            for item in items:
                if item.split == split:
                    handle.write(json.dumps(item.record(), ensure_ascii=False) + "\n")
    write_csv(HERE / "review_log.csv", LOG_COLUMNS, review_log(items, dropped, review_rows))
    write_card_tables(counts_tables(items) + "\n\n" + audit_table(items))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sources", nargs="*", type=Path, help="source files (default: source/*.yaml)"
    )
    parser.add_argument("--check", action="store_true", help="check and summarise, write nothing")
    parser.add_argument("--no-reviews", action="store_true", help="ignore source/reviews/")
    args = parser.parse_args(argv)
    sources = args.sources or sorted(SOURCE_DIR.glob("*.yaml"))
    items, dropped, layouts, images, problems, warnings, review_rows = load_all(
        sources, reviews=not args.no_reviews
    )
    tables = counts_tables(items) if items else "(no items)"
    print(tables)
    print()
    print(writer_table(items))
    print()
    print(audit_table(items))
    unreviewed = [i.id for i in items if not i.reviewer]
    if unreviewed:
        print(f"{len(unreviewed)} item(s) have no review yet (e.g. {unreviewed[0]})")
    for warning in warnings:
        print(f"warning: {warning}")
    for problem in problems:
        print(f"problem: {problem}")
    if problems:
        print(f"{len(problems)} problem(s); nothing written")
        return 1
    if not args.check:
        sources_of = {}
        for path in sources:
            for scenario in load_source(path)["scenarios"]:
                sources_of[scenario["id"]] = path.name
        write_dataset(items, dropped, layouts, images, review_rows, sources_of)
        print(f"wrote {len(items)} items, {len({i.image for i in items})} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
