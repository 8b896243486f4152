#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks for bayesgpu, then the npm packages.
#  - chromium: ships SwiftShader (a CPU Vulkan driver) used by Dawn, Deno and Chromium when there is no GPU,
#    and is the browser of the headless tests;
#  - libvulkan1: the Vulkan loader Dawn (npm `webgpu`) needs;
#  - dataset-fashion-mnist: the default out-of-distribution set (optional; skipped if unavailable).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -f /usr/lib/chromium/vk_swiftshader_icd.json ] || need+=(chromium)
ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || need+=(libvulkan1)
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends chromium libvulkan1 >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends dataset-fashion-mnist >/dev/null || echo "setup: dataset-fashion-mnist unavailable; OOD defaults need --ood FILE"
fi

# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
