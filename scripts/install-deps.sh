#!/usr/bin/env bash
# Installs the Debian 12 packages ironclad needs (idempotent; run as root).
#   --peer: also the PyTorch peer (python3-torch) used by benchmarks and golden-file scripts.
set -euo pipefail
pkgs=(g++ meson ninja-build pkg-config libeigen3-dev libstb-dev doctest-dev nlohmann-json3-dev zlib1g-dev
      dataset-fashion-mnist)
[ "${1:-}" = "--peer" ] && pkgs+=(python3-torch python3-numpy)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
