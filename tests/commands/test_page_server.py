"""The page server's image index: what a shared run folder may and may not make it serve."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from harness.commands import page_server
from harness.hashing import image_id


def _png(path: Path, size: tuple[int, int] = (8, 8), colour: str = "red") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def test_links_out_of_the_folder_and_oversized_images_are_not_served(tmp_path, monkeypatch, capsys):
    import harness.tasks.data as data

    monkeypatch.setattr(data, "MAX_IMAGE_PIXELS", 100)
    images = tmp_path / "run" / "images"
    good = _png(images / "img-good.png")
    by_content = _png(images / "photo.png", colour="blue")
    outside = _png(tmp_path / "elsewhere" / "secret.png", colour="green")
    (images / "img-link.png").symlink_to(outside)
    (images / "linked.png").symlink_to(outside)
    _png(images / "img-huge.png", size=(20, 20))  # 400 pixels, over the patched 100
    (images / "img-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)

    found = page_server.index_images([images])

    with Image.open(by_content) as image:
        content_id = image_id(image.convert("RGB"))
    assert found["img-good"] == good and found[content_id] == by_content
    assert set(found.values()) == {good, by_content}
    err = capsys.readouterr().err
    assert "not shown: 2 image file(s) that resolve outside" in err
    assert "not shown: 1 image file(s) with more than" in err
    assert "not shown: 1 image file(s) that are not readable images" in err


def test_a_link_that_stays_inside_the_folder_is_served(tmp_path):
    images = tmp_path / "images"
    target = _png(images / "shared" / "img-a.png")
    (images / "img-b.png").symlink_to(target)
    found = page_server.index_images([images])
    assert found["img-a"] == target and found["img-b"] == images / "img-b.png"
