#!/usr/bin/env bash
# Vendor Chart.js's UMD build and licence into the dashboard's static files, from the npm registry.
#   tools/vendor_chartjs.sh            # the newest 4.x
#   tools/vendor_chartjs.sh 4.6.1      # an exact version
# Then update the version and checksum in footfall/analytics_api/static/vendor/README.md (printed
# below), run the browser test (tests/analytics_api/test_dashboard_browser.py) and look at its
# screenshots in tests/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-4}"
dest=footfall/analytics_api/static/vendor
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "chart.js@${version}" >/dev/null && tar xzf chart.js-*.tgz)
cp "$work/package/dist/chart.umd.js" "$dest/chart.umd.js"
cp "$work/package/LICENSE.md" "$dest/chart.js-LICENSE.md"
echo "chart.js $(node -p "require('$work/package/package.json').version")"
sha256sum "$dest/chart.umd.js"
