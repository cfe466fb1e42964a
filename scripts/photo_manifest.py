"""Write cascade/data/photo_pool.json from the hand-picked photos below (needs the registries).

Each file here was looked at in a contact sheet and kept only if it is a real photograph (no
drawings, renders, logos (mahotas' DepartmentStore.jpg is a drawing, plasma's Volna a render), screenshots, near-duplicate edits of another kept photo, or pictures
with transparency). The licence comes from the package's Debian copyright file (DEP-5, per file)
where it is machine-readable, else from the `licence` given here, taken from the package's
copyright file or the image's own documentation.

    PYTHONPATH=. python scripts/photo_manifest.py [--cache /tmp/photo-cache]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
from pathlib import Path

from cascade.photo_pool import MANIFEST, fetch_from_registry, licence_for, read_members, refuse_denied

PLASMA = "usr/share/wallpapers/{}/contents/images/{}"
MATE = "usr/share/backgrounds/mate/nature/{}.jpg"
GIMP = "usr/share/gimp/2.0/help/en/images/"
SELECTION = [
    ("deb", "mate-backgrounds", "1.26.0-1", None, [MATE.format(n) for n in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
        "Storm", "TwoWings", "Wood", "YellowFlower")]),
    ("deb", "plasma-workspace-wallpapers", "4:5.27.5-2", None, [PLASMA.format(*n) for n in (
        ("BytheWater", "2560x1600.jpg"), ("ColdRipple", "2560x1600.jpg"), ("ColorfulCups", "2560x1600.jpg"),
        ("DarkestHour", "2560x1600.jpg"), ("EveningGlow", "2560x1600.jpg"), ("FallenLeaf", "2560x1600.jpg"),
        ("Grey", "2560x1600.jpg"), ("Kite", "2560x1600.jpg"), ("OneStandsOut", "2560x1600.jpg"),
        ("Path", "2560x1600.jpg"), ("summer_1am", "2560x1600.jpg"))]),
    ("deb", "lomiri-wallpapers-16.04", "20.04.0-2", None, [f"usr/share/backgrounds/{n}.jpg" for n in (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "friends_by_Aitzol_Berasategi",
        "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt",
        "sunset_by_Aitzol_Berasategi")]),
    ("deb", "lomiri-wallpapers-20.04", "20.04.0-2", None, ["usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg"]),
    ("deb", "kphotoalbum", "5.9.1-1", "GPL-2+", "usr/share/kphotoalbum/demo/"),
    ("deb", "gimp-help-en", "2.10.34-2", "GFDL-NIV-1.2+", [GIMP + n for n in (
        "tutorials/quickie-flip-example-horizontal.jpg", "tutorials/quickie-jpeg-100.jpg",
        "tutorials/quickie-remove-background-source.jpg", "tutorials/quickie-rotate-example-90-CCW.jpg",
        "tutorials/tone-mapping/apple-orchard-truck-from-camera.jpg", "tutorials/tone-mapping/after-auto-stretch-contrast.jpg",
        "filters/examples/2zinnias.png", "filters/examples/blur/mean_curvature-ex-1.jpg",
        "filters/examples/colors-retinex1.png", "filters/examples/cosmos-1.png",
        "filters/examples/enhance/high-pass-origin.png", "filters/examples/distort/spherize-ex-curvature.jpg")]),
    ("deb", "hugin-data", "2022.0.0+dfsg-2", None, ["usr/share/hugin/xrc/data/help_en_EN/" + n for n in (
        "800px-C_Marchi-GrandCentral-adj.jpg", "AliasingPScubic.jpg", "Big_ben_cylindrical.jpg",
        "CA_fringes00.jpg", "CA_tCA00.jpg", "Medinet_habu_horizontal_fisheye.jpg")]),
    ("pypi", "scikit-image", "0.25.2", {
        "astronaut.png": "public domain (NASA)", "camera.png": "CC0 (Lav Varshney)",
        "chelsea.png": "CC0 (Stefan van der Walt)", "coffee.png": "CC0 (Rachel Michetti)",
        "rocket.jpg": "public domain (SpaceX)", "brick.png": "CC0 (CC0Textures)",
        "grass.png": "CC0 (CC0Textures)", "gravel.png": "CC0 (CC0Textures)"}, "skimage/data/"),
    ("pypi", "mahotas", "1.4.18", "MIT (package licence; no notice of its own)",
     ["mahotas/demos/data/luispedro.jpg"]),  # not DepartmentStore.jpg: a drawing
    ("pypi", "matplotlib", "3.11.2", "public domain (U.S. Navy photograph)", ["matplotlib/mpl-data/sample_data/grace_hopper.jpg"]),
    ("pypi", "imgaug", "0.4.0", "MIT (package licence; no notice of its own)", ["imgaug/quokka.jpg"]),
]


def list_folder(archive: Path, folder: str) -> list[str]:
    if archive.suffix == ".whl":
        import zipfile

        with zipfile.ZipFile(archive) as wheel:
            return [n for n in wheel.namelist() if n.startswith(folder)]
    names = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=True).stdout
    import io
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(names)) as tar:
        return [m.name.removeprefix("./") for m in tar if m.isfile() and m.name.removeprefix("./").startswith(folder)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/photo-cache"))
    parser.add_argument("--out", type=Path, default=MANIFEST)
    parser.add_argument("--heldout-fraction", type=float, default=0.3)
    args = parser.parse_args()
    photos = []
    for source, package, version, licence, paths in SELECTION:
        refuse_denied(package)
        archive = fetch_from_registry(source, package, version, args.cache)
        if isinstance(licence, dict):  # per file, keyed by file name
            paths = [paths + name for name in licence]
        elif isinstance(paths, str):  # a folder: every image in it
            paths = sorted(p for p in list_folder(archive, paths) if p.lower().endswith((".jpg", ".jpeg", ".png"))
                           and "logo" not in p and "CategoryImages" not in p)  # kphotoalbum: its logo, face icons
        copyright_text = ""
        if source == "deb":
            doc = f"usr/share/doc/{package}/copyright"
            copyright_text = read_members(archive, {doc}).get(doc, b"").decode("utf-8", "replace")
        angles = {}
        if package == "kphotoalbum":  # its demo keeps each photo's rotation in the album, not in EXIF
            import xml.etree.ElementTree as ElementTree

            album = paths[0].rsplit("/", 1)[0] + "/index.xml"
            root = ElementTree.fromstring(read_members(archive, {album})[album])
            angles = {image.get("file"): int(image.get("angle", "0")) for image in root.iter("image")}
        contents = read_members(archive, set(paths))
        for path in paths:
            data = contents[path]
            digest = hashlib.sha256(data).hexdigest()
            refuse_denied(package, digest)
            given = licence.get(path.rsplit("/", 1)[-1]) if isinstance(licence, dict) else licence
            found = licence_for(copyright_text, path.split("/", 3)[-1]) if copyright_text else ""
            photos.append({"source": source, "package": package, "version": version, "path": path,
                           "sha256": digest, "licence": given or found or "see the package's copyright file"}
                          | ({"rotate": angles[name]} if angles.get(name := path.rsplit("/", 1)[-1]) else {}))
        print(f"{package}: {len(paths)} photos")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"heldout_fraction": args.heldout_fraction, "photos": photos}, indent=1) + "\n")
    print(f"{len(photos)} photos from {len(SELECTION)} packages -> {args.out}")


if __name__ == "__main__":
    main()
