#!/usr/bin/env bash
# Builds (and tests) the consumer packages the README shows, from the README's own text: each ```swift
# block that starts with `// swift-tools-version` is a package's manifest, and the blocks after it that
# start with `// Sources/…` or `// Tests/…` are its files. The one change: the kliq-webhooks dependency
# comes from this checkout (a clone of HEAD beside the consumers), not from GitHub.
#   .ci/consumer.sh [PACKAGE-NAME…]    (default: every package the README shows)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/kliq-consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/kliq-webhooks"

python3 - "$repo/README.md" "$work" <<'PY'
import os, re, sys
readme, work = sys.argv[1], sys.argv[2]
blocks = re.findall(r"```swift\n(.*?)```", open(readme, encoding="utf-8").read(), re.S)
manifests = {}  # package name -> manifest text
files = []      # (path, text)
for block in blocks:
    first = block.split("\n", 1)[0]
    if first.startswith("// swift-tools-version"):
        manifests[re.search(r'name: "([^"]+)"', block).group(1)] = block
    elif re.match(r"// (Sources|Tests)/\w+/\S+\.swift$", first):
        files.append((first[3:], block))
url = '.package(url: "https://github.com/kliq-ai/kliq-webhooks.git"'
for package, manifest in manifests.items():
    lines = [('        .package(path: "../kliq-webhooks"),' if url in line else line) for line in manifest.split("\n")]
    os.makedirs(f"{work}/{package}", exist_ok=True)
    open(f"{work}/{package}/Package.swift", "w").write("\n".join(lines))
    print(f"consumer: {package}/Package.swift")
for path, text in files:
    # A file belongs to the package whose manifest declares its target (the folder after Sources/ or Tests/).
    target = path.split("/")[1]
    owners = [name for name, manifest in manifests.items() if f'name: "{target}"' in manifest]
    if len(owners) != 1:
        sys.exit(f"consumer: README block {path}: {len(owners)} manifests declare target {target}")
    os.makedirs(os.path.dirname(f"{work}/{owners[0]}/{path}"), exist_ok=True)
    open(f"{work}/{owners[0]}/{path}", "w").write(text)
    print(f"consumer: {owners[0]}/{path}")
PY

for dir in "$work"/*/; do
  name=$(basename "$dir")
  [ "$name" = kliq-webhooks ] && continue
  if [ $# -gt 0 ] && [[ ! " $* " == *" $name "* ]]; then continue; fi
  # A consumer of the Vapor adapter builds Vapor: reuse the adapter's own build folder when CI has just
  # made it (the same checkouts at the same path, so what is unchanged is not compiled twice).
  scratch=()
  if grep -q "Integrations/KliqWebhooksVapor" "$dir/Package.swift" && [ -d "$repo/Integrations/KliqWebhooksVapor/.build" ]; then
    scratch=(--scratch-path "$repo/Integrations/KliqWebhooksVapor/.build")
  fi
  echo "consumer: building $name ${scratch[*]}"
  ( cd "$dir" && swift build --build-tests "${scratch[@]}" 2>&1 | grep -v "^\[" ; exit "${PIPESTATUS[0]}" )
  if [ -d "$dir/Tests" ]; then ( cd "$dir" && swift test --skip-build "${scratch[@]}" ); fi
done
