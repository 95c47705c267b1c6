#!/usr/bin/env bash
# Fetches the reference photos the object tests use as ground truth and
# prints their directory (SPEC §8):
#
#     ./scripts/fetch-photos.sh           # e.g. ~/.cache/lookout/photos
#
# They are the sample images that ship inside the PyPI scikit-image wheel
# (BSD-3-Clause): astronaut.png and camera.png (a person), motorcycle_left.png
# (a motorcycle), chelsea.png (a cat) and coffee.png (a cup). They are never
# committed; `pip download` takes the pinned wheel, and only the five files
# are kept. Environment: LOOKOUT_PHOTO_DIR, PYTHON (default python3).
set -euo pipefail

PHOTO_DIR="${LOOKOUT_PHOTO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lookout/photos}"
PYTHON="${PYTHON:-python3}"
PHOTOS=(astronaut.png camera.png motorcycle_left.png chelsea.png coffee.png)

missing=0
for photo in "${PHOTOS[@]}"; do
    [ -s "$PHOTO_DIR/$photo" ] || missing=1
done
if [ "$missing" = 0 ]; then
    echo "$PHOTO_DIR"
    exit 0
fi

mkdir -p "$PHOTO_DIR"
work="$(mktemp -d "$PHOTO_DIR/.fetch.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "fetch-photos: downloading the scikit-image 0.25.2 wheel (15 MB) for its sample photos" >&2
"$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux2014_x86_64 "scikit-image==0.25.2" -d "$work"
"$PYTHON" - "$work" "$PHOTO_DIR" "${PHOTOS[@]}" <<'PY'
import glob, sys, zipfile
work, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
(wheel,) = glob.glob(f"{work}/scikit_image-*.whl")
with zipfile.ZipFile(wheel) as z:
    for name in names:
        with open(f"{out}/{name}", "wb") as f:
            f.write(z.read(f"skimage/data/{name}"))
PY
echo "$PHOTO_DIR"
