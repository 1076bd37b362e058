#!/usr/bin/env bash
# `npm run test:containers`: builds the image, runs docker-compose.yml for real and checks it from outside
# (test/containers/run.ts). Needs a container engine: Docker, or on machines without one the shared podman set-up
# (engine-up.sh: $SHOP_ENGINE_UP, else ../shared/containers/ beside the repository, else /work/shared/containers/).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${DOCKER_HOST:-}" ] && ! docker info >/dev/null 2>&1; then
  engine_up=""
  for candidate in "${SHOP_ENGINE_UP:-}" "../shared/containers/engine-up.sh" "/work/shared/containers/engine-up.sh"; do
    if [ -n "$candidate" ] && [ -f "$candidate" ]; then engine_up=$candidate; break; fi
  done
  if [ -z "$engine_up" ]; then
    echo "test:containers: no container engine. Start Docker, or set SHOP_ENGINE_UP to an engine-up.sh" >&2
    echo "(looked for \$SHOP_ENGINE_UP, ../shared/containers/engine-up.sh, /work/shared/containers/engine-up.sh)." >&2
    exit 2
  fi
  # shellcheck source=/dev/null
  source "$engine_up"
fi
command -v docker-compose >/dev/null || { echo "test:containers: docker-compose is not installed" >&2; exit 2; }

# The whole run, image build included, is bounded; run.ts takes the stack down on every way out.
exec timeout --signal=TERM --kill-after=60 "${CONTAINER_TEST_TIMEOUT:-1200}" npx tsx test/containers/run.ts "$@"
