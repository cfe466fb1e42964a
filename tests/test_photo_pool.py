"""The real-photo pool: manifest, split by package, deny-list, and an offline build from local packages."""

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cascade.lab import photo_pool
from cascade.lab.photo_pool import (NEAR_DUPLICATE_BITS, DeniedSource, Photo, PoolError, build_pool, dhash, fetch_from_registry,
                                hash_distance, licence_for, load_manifest, load_pool, near_duplicates, refuse_denied,
                                split_by_package)
from cascade.lab.qt_resources import ResourceError, read_rcc
from natix_miner.tools.cli import main as cli


def _photo_bytes(seed: int, size: tuple[int, int], fmt: str) -> bytes:
    rng = np.random.default_rng(seed)
    gradient = np.linspace(0, 255, size[0], dtype=np.float32)[None, :, None]
    pixels = np.clip(gradient + rng.normal(0, 30, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


def _rcc(files: dict[str, bytes], compressed: frozenset[str] = frozenset()) -> bytes:
    """A Qt resource bundle (rcc format 2) holding `files` ({"folder/name": bytes}, one folder
    level), laid out as Qt's rcc tool writes it: header, data, names, then the tree."""
    folders: dict[str, list[str]] = {}
    for path in files:
        folder, name = path.split("/")
        folders.setdefault(folder, []).append(name)
    data, names, name_at = b"", b"", {}

    def name_offset(name: str) -> int:
        nonlocal names
        if name not in name_at:
            name_at[name] = len(names)
            names += struct.pack(">HI", len(name), 0) + name.encode("utf-16-be")
        return name_at[name]

    entries = [struct.pack(">IHII", 0, 2, len(folders), 1) + b"\0" * 8]  # the root and its folders
    first_file = 1 + len(folders)
    file_entries = []
    for folder, members in folders.items():
        entries.append(struct.pack(">IHII", name_offset(folder), 2, len(members), first_file + len(file_entries)) + b"\0" * 8)
        for name in members:
            raw = files[f"{folder}/{name}"]
            flag = 1 if f"{folder}/{name}" in compressed else 0
            stored = struct.pack(">I", len(raw)) + zlib.compress(raw) if flag else raw
            file_entries.append(struct.pack(">IHHHI", name_offset(name), flag, 0, 0, len(data)) + b"\0" * 8)
            data += struct.pack(">I", len(stored)) + stored
    tree = b"".join(entries + file_entries)
    data_at = 20
    names_at = data_at + len(data)
    tree_at = names_at + len(names)
    return b"qres" + struct.pack(">IIII", 2, tree_at, data_at, names_at) + data + names + tree


def _make_packages(root: Path) -> list[dict]:
    """A tiny .deb (built with dpkg-deb) holding two photos and a Qt bundle of two more, and a tiny
    wheel, as the registries would hand them over; returns manifest entries for their photos."""
    entries = []
    tree = root / "tree"
    bundled = {"images/bird.jpg": _photo_bytes(4, (500, 300), "JPEG"), "images/tower.png": _photo_bytes(5, (300, 500), "PNG")}
    files = {"usr/share/backgrounds/street.png": _photo_bytes(1, (600, 400), "PNG"),
             "usr/share/backgrounds/field.jpg": _photo_bytes(2, (320, 200), "JPEG"),
             "usr/share/game/photos.rcc": _rcc(bundled, frozenset({"images/tower.png"})),
             "usr/share/Design Templates/house 1.jpg": _photo_bytes(6, (400, 300), "JPEG")}
    for path, data in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(data)
        if path.endswith(".rcc"):
            for inner, photo in bundled.items():
                entries.append({"source": "deb", "package": "fake-backgrounds", "version": "1.0-1", "path": f"{path}!{inner}",
                                "sha256": hashlib.sha256(photo).hexdigest(), "licence": "GPL-3"})
            continue
        entries.append({"source": "deb", "package": "fake-backgrounds", "version": "1.0-1", "path": path,
                        "sha256": hashlib.sha256(data).hexdigest(), "licence": "CC0-1.0"})
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text("Package: fake-backgrounds\nVersion: 1.0-1\nArchitecture: all\n"
                                             "Maintainer: Test <t@example.org>\nDescription: test photos\n")
    subprocess.run(["dpkg-deb", "-Zgzip", "--build", "--root-owner-group", str(tree), str(root / "fake-backgrounds_1.0-1_all.deb")],
                   check=True, capture_output=True)
    data = _photo_bytes(3, (400, 300), "JPEG")
    with zipfile.ZipFile(root / "fakepics-2.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("fakepics/data/cat.jpg", data)
    entries.append({"source": "pypi", "package": "fakepics", "version": "2.0", "path": "fakepics/data/cat.jpg",
                    "sha256": hashlib.sha256(data).hexdigest(), "licence": "MIT", "rotate": 90})
    return entries


class LocalRegistry:
    """Hands out the fixture archives and counts how often it was asked."""

    def __init__(self, root: Path):
        self.root, self.calls = root, []

    def __call__(self, source, package, version, cache):
        self.calls.append(package)
        name = f"{package}_{version}_all.deb" if source == "deb" else f"{package}-{version}-py3-none-any.whl"
        cache.mkdir(parents=True, exist_ok=True)
        return Path(shutil.copy(self.root / name, cache / name))


@pytest.fixture
def local_packages(tmp_path):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    root = tmp_path / "registry"
    root.mkdir()
    entries = _make_packages(root)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"heldout_fraction": 0.3, "photos": entries}))
    return root, manifest, entries


# The sides the first pool's packages were measured on: adding packages, groups or pins must not move them.
FIRST_POOL_SIDES = {
    "gimp-help-en": "heldout", "hugin-data": "heldout", "lomiri-wallpapers-16.04": "heldout", "matplotlib": "heldout",
    "imgaug": "train", "kphotoalbum": "train", "lomiri-wallpapers-20.04": "train", "mahotas": "train",
    "mate-backgrounds": "train", "plasma-workspace-wallpapers": "train", "scikit-image": "train"}


def test_committed_manifest_splits_by_package_reproducibly():
    photos, fraction = load_manifest()
    assert len(photos) >= 250 and len({p.package for p in photos}) >= 15
    splits = split_by_package(photos, fraction)
    assert splits == split_by_package(list(reversed(photos)), fraction)  # order of entries does not matter
    assert {p: splits[p] for p in FIRST_POOL_SIDES} == FIRST_POOL_SIDES
    heldout = sum(splits[p.package] == "heldout" for p in photos)
    assert 0.15 <= heldout / len(photos) <= 0.45, heldout
    assert len({p.sha256 for p in photos}) == len(photos)  # no photo listed twice
    assert all(p.licence for p in photos)
    notes = json.loads(photo_pool.MANIFEST.read_text())["packages"]
    assert set(notes) == {p.package for p in photos} and all(len(n["note"]) > 10 for n in notes.values())


def test_committed_manifest_has_no_near_duplicate_across_the_split():
    photos, fraction = load_manifest()
    assert all(len(p.dhash) == 32 and int(p.dhash, 16) >= 0 for p in photos)
    assert near_duplicates(photos) == []  # no picture (or a resized copy of it) on two sides, nor twice in a package
    assert near_duplicates(photos, across_groups_only=False) == []


def test_groups_and_pins_decide_sides_without_moving_other_packages():
    photos = [Photo("deb", f"pkg{i % 12}", "1", f"p{i}.jpg", f"{i:064x}", "CC0") for i in range(72)]
    before = split_by_package(photos, 0.3)
    heldout = next(p for p, s in before.items() if s == "heldout")
    train = next(p for p, s in before.items() if s == "train")
    twins = [Photo("deb", f"{heldout}-de", "1", "a.jpg", "a" * 64, "CC0", group=heldout),
             Photo("deb", f"{train}-de", "1", "b.jpg", "b" * 64, "CC0", group=train),
             Photo("deb", "big", "1", "c.jpg", "c" * 64, "CC0", group="big-set", pinned="train"),
             Photo("deb", "big-extras", "1", "d.jpg", "d" * 64, "CC0", group="big-set")]
    after = split_by_package(photos + twins, 0.3)
    assert all(after[p] == s for p, s in before.items())  # groups and pins move no package already split
    assert after[f"{heldout}-de"] == "heldout" and after[f"{train}-de"] == "train"  # a group shares its side
    assert after["big"] == after["big-extras"] == "train"  # a pin holds for its whole group
    with pytest.raises(ValueError, match="both sides"):
        split_by_package(photos + [Photo("deb", "x", "1", "e.jpg", "e" * 64, "CC0", group="g", pinned="train"),
                                   Photo("deb", "y", "1", "f.jpg", "f" * 64, "CC0", group="g", pinned="heldout")], 0.3)


def test_manifest_packages_section_sets_groups_and_pins(tmp_path):
    entry = {"source": "deb", "version": "1", "sha256": "0" * 64, "licence": "CC0"}
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"packages": {"a-de": {"note": "n", "group": "a"}, "b": {"note": "n", "split": "heldout"}},
                                    "photos": [entry | {"package": "a-de", "path": "x.jpg"}, entry | {"package": "b", "path": "y.jpg"},
                                               entry | {"package": "a", "path": "z.jpg"}]}))
    photos, _ = load_manifest(manifest)
    assert [(p.split_key, p.pinned) for p in photos] == [("a", ""), ("b", "heldout"), ("a", "")]
    splits = split_by_package(photos, 0.3)
    assert splits["a"] == splits["a-de"] and splits["b"] == "heldout"
    manifest.write_text(json.dumps({"photos": [entry | {"package": "a", "path": "z.jpg", "group": "b"}]}))
    with pytest.raises(ValueError, match="packages"):
        load_manifest(manifest)


def test_near_duplicates_are_found_by_content_not_by_name():
    original = Image.open(io.BytesIO(_photo_bytes(7, (640, 480), "PNG"))).convert("RGB")
    buffer = io.BytesIO()
    original.resize((427, 320)).save(buffer, "JPEG", quality=60)
    copy = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    other = Image.open(io.BytesIO(_photo_bytes(8, (640, 480), "PNG"))).convert("RGB").transpose(Image.FLIP_LEFT_RIGHT)
    assert hash_distance(dhash(original), dhash(copy)) <= NEAR_DUPLICATE_BITS < hash_distance(dhash(original), dhash(other))
    a = Photo("deb", "wallpapers", "1", "a.png", "1" * 64, "CC0", dhash=dhash(original))
    b = Photo("deb", "wallpapers-hd", "1", "a-small.jpg", "2" * 64, "CC0", dhash=dhash(copy))
    c = Photo("pypi", "samples", "1", "c.png", "3" * 64, "CC0", dhash=dhash(other))
    d = Photo("pypi", "mirror", "1", "a.png", "1" * 64, "CC0")  # same bytes as a, no hash recorded
    assert [(x.package, y.package) for x, y, _ in near_duplicates([a, b, c, d])] == [("wallpapers", "wallpapers-hd"), ("wallpapers", "mirror")]
    grouped = [a, Photo(**{**b.__dict__, "group": "wallpapers"}), c]
    assert near_duplicates(grouped) == []  # one group: no leak across the split
    assert len(near_duplicates(grouped, across_groups_only=False)) == 1


def test_qt_resource_bundles_are_read_and_bad_ones_refused():
    files = {"pics/a.jpg": b"jpeg bytes", "pics/b.png": b"png bytes" * 50, "other/c.webp": b"webp"}
    bundle = _rcc(files, frozenset({"pics/b.png"}))
    assert read_rcc(bundle) == files
    assert read_rcc(bundle, {"pics/b.png"}) == {"pics/b.png": files["pics/b.png"]}
    with pytest.raises(ResourceError, match="qres"):
        read_rcc(b"PK\x03\x04 not a bundle at all")


def test_split_keeps_each_package_on_one_side():
    photos = [photo_pool.Photo("deb", f"pkg{i % 12}", "1", f"p{i}.jpg", f"{i:064x}", "CC0") for i in range(72)]
    splits = split_by_package(photos, 0.3)
    assert set(splits) == {f"pkg{i}" for i in range(12)} and set(splits.values()) == {"train", "heldout"}
    more = photos + [photo_pool.Photo("pypi", f"new{i}", "1", "x.jpg", f"{100 + i:064x}", "CC0") for i in range(20)]
    grown = split_by_package(more, 0.3)
    assert all(grown[p] == s for p, s in splits.items())  # new packages never move existing ones
    assert 2 <= list(grown.values()).count("heldout") <= 20
    assert set(split_by_package(photos, 0.0).values()) == {"train", "heldout"}  # never an empty side
    with pytest.raises(ValueError, match="two packages"):
        split_by_package(photos[:1], 0.3)


@pytest.mark.parametrize("package", ["opencv-doc", "darknet", "ultralytics", "python3-opencv", "OpenCV-Doc", "yolov5"])
def test_deny_list_refuses_reserved_packages(package):
    with pytest.raises(DeniedSource, match="reserved"):
        refuse_denied(package)


def test_deny_list_refuses_reserved_content_and_manifests(tmp_path):
    refuse_denied("mate-backgrounds", "0" * 64)  # an ordinary package and content pass
    bus = next(iter(photo_pool.DENIED_SHA256))
    with pytest.raises(DeniedSource):
        refuse_denied("some-package", bus)
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"photos": [{"source": "deb", "package": "opencv-doc", "version": "4.6",
                                                "path": "a.jpg", "sha256": "0" * 64, "licence": "BSD"}]}))
    with pytest.raises(DeniedSource):
        load_manifest(manifest)
    assert cli(["photos", "build", "--out", str(tmp_path / "pool"), "--manifest", str(manifest)]) == 2
    assert not (tmp_path / "pool").exists()
    assert not any(refuse_denied(p.package, p.sha256) for p in load_manifest()[0])  # the committed one is clean


def test_build_verifies_normalises_and_resumes(local_packages, tmp_path):
    root, manifest, entries = local_packages
    registry, lines = LocalRegistry(root), []
    index = build_pool(tmp_path / "pool", manifest, fetch=registry, max_side=256, log=lines.append)
    assert sorted(registry.calls) == ["fake-backgrounds", "fakepics"]
    pool = json.loads(index.read_text())["photos"]
    assert len(pool) == 6 and {e["split"] for e in pool} == {"train", "heldout"}
    assert not any(" " in e["file"] for e in pool)  # file names a shell loop can take
    for entry in pool:
        with Image.open(tmp_path / "pool" / entry["file"]) as image:
            assert image.format == "JPEG" and image.mode == "RGB" and max(image.size) <= 256
        assert entry["sha256"] in {e["sha256"] for e in entries} and entry["licence"]
    with Image.open(tmp_path / "pool" / next(e["file"] for e in pool if e["path"].endswith("street.png"))) as image:
        assert image.size == (256, 171)  # aspect kept
    with Image.open(tmp_path / "pool" / next(e["file"] for e in pool if e["path"].endswith("cat.jpg"))) as image:
        assert image.size == (192, 256)  # turned upright as the manifest says
    assert any(line.startswith("[1/2]") for line in lines) and "pool ready" in lines[-1]
    # a second run finds everything built and asks no registry
    build_pool(tmp_path / "pool", manifest, fetch=registry, max_side=256, log=lines.append)
    assert len(registry.calls) == 2 and "already built" in lines[-2]
    # an interrupted run resumes: only the missing photo's package is fetched again
    (tmp_path / "pool" / pool[0]["file"]).unlink()
    build_pool(tmp_path / "pool", manifest, fetch=registry, max_side=256, log=lines.append)
    assert registry.calls[2:] == [pool[0]["package"]]
    assert len(load_pool(tmp_path / "pool", "train")) + len(load_pool(tmp_path / "pool", "heldout")) == 6
    with Image.open(tmp_path / "pool" / next(e["file"] for e in pool if e["path"].endswith("!images/tower.png"))) as image:
        assert image.size == (154, 256)  # read out of the Qt bundle (a compressed entry), upright as stored


def test_build_refuses_a_changed_archive(local_packages, tmp_path):
    root, manifest, entries = local_packages
    entries[0]["sha256"] = "f" * 64
    manifest.write_text(json.dumps({"heldout_fraction": 0.3, "photos": entries}))
    with pytest.raises(PoolError, match="sha256"):
        build_pool(tmp_path / "pool", manifest, fetch=LocalRegistry(root), log=lambda _: None)
    assert not list((tmp_path / "pool").rglob("*street*"))


def test_unreachable_registry_says_what_to_do(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("apt-get", "pip"):  # stand-ins that fail as a client without network does
        (bin_dir / tool).write_text("#!/bin/sh\necho 'E: Failed to fetch: Temporary failure resolving deb.debian.org' >&2\nexit 100\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(photo_pool, "PIP", (str(bin_dir / "pip"),))
    with pytest.raises(PoolError, match="apt-get update"):
        fetch_from_registry("deb", "mate-backgrounds", "1.26.0-1", tmp_path / "cache")
    with pytest.raises(PoolError, match="PyPI is reachable"):
        fetch_from_registry("pypi", "scikit-image", "0.25.2", tmp_path / "cache")


def test_licence_comes_from_the_matching_dep5_stanza():
    text = ("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
            "Files: *\nCopyright: someone\nLicense: GPL-2+\n\n"
            "Files: nature/Aqua.jpg\n nature/Dune.jpg\nCopyright: a photographer\nLicense: CC-BY-SA-4.0\n text\n")
    assert licence_for(text, "share/backgrounds/mate/nature/Dune.jpg") == "CC-BY-SA-4.0"
    assert licence_for(text, "share/backgrounds/mate/desktop/Stripes.png") == "GPL-2+"
