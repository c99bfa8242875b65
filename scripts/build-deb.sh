#!/bin/sh
# Build the Debian packages from this tree without touching it:
#   scripts/build-deb.sh OUTDIR
# copies the tracked and new (not ignored) files to a scratch directory,
# runs `dpkg-buildpackage -us -uc -b` there (dpkg-buildpackage writes its
# results to the parent of the source tree, which must not be the
# directory holding our checkout), and moves the .deb, .changes and
# .buildinfo files to OUTDIR. Upstream tests are skipped in the package
# build (debian/rules: override_dh_auto_test); `make check` runs them.
set -eu
out=$(realpath -m "${1:?usage: $0 OUTDIR}")
cd "$(dirname "$0")/.."
scratch=$(mktemp -d /tmp/utarget-deb.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/utarget" "$out"
git ls-files -z -c -o --exclude-standard | xargs -0 cp --parents -t "$scratch/utarget"
(cd "$scratch/utarget" &&
 DEB_BUILD_OPTIONS="nocheck parallel=${JOBS:-2}" dpkg-buildpackage -us -uc -b)
mv "$scratch"/*.deb "$scratch"/*.changes "$scratch"/*.buildinfo "$out"/
