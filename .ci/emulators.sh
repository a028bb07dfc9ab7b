#!/usr/bin/env bash
# Starts the Firestore and Pub/Sub emulators unless they already answer,
# and waits until both are ready. Installs the emulator packages and a JRE
# when they are missing. Usage: emulators.sh start|stop|env
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="${ROOT}/.run"
FIRESTORE_HOST="${FIRESTORE_EMULATOR_HOST:-127.0.0.1:8780}"
PUBSUB_HOST="${PUBSUB_EMULATOR_HOST:-127.0.0.1:8781}"
PROJECT="${AUTONOMICS_PROJECT:-demo-autonomics}"
mkdir -p "${RUN}"

ready() { curl -sf -m 2 "http://$1/" >/dev/null 2>&1; }

install_missing() {
  local pkgs=()
  command -v java >/dev/null 2>&1 || pkgs+=(default-jre-headless)
  command -v curl >/dev/null 2>&1 || pkgs+=(curl)
  # The monitor's metrics engine in tests and in the local stack (the
  # binary only: its service is never started).
  command -v prometheus >/dev/null 2>&1 || pkgs+=(prometheus)
  # The console's pages are tested in a real headless Chromium.
  command -v chromium >/dev/null 2>&1 || pkgs+=(chromium fonts-dejavu-core)
  if ! command -v gcloud >/dev/null 2>&1; then
    pkgs+=(google-cloud-cli)
  fi
  local sdk
  sdk="$(gcloud info --format='value(installation.sdk_root)' 2>/dev/null || echo /usr/lib/google-cloud-sdk)"
  [ -d "${sdk}/platform/cloud-firestore-emulator" ] || pkgs+=(google-cloud-cli-firestore-emulator)
  [ -d "${sdk}/platform/pubsub-emulator" ] || pkgs+=(google-cloud-cli-pubsub-emulator)
  if [ ${#pkgs[@]} -gt 0 ]; then
    echo "installing: ${pkgs[*]}" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >&2
  fi
}

wait_ready() {
  local name=$1 host=$2 log=$3
  for _ in $(seq 1 120); do
    if ready "${host}"; then echo "${name} emulator ready at ${host}" >&2; return 0; fi
    sleep 0.5
  done
  echo "${name} emulator did not start; last lines of ${log}:" >&2
  tail -n 30 "${log}" >&2 || true
  return 1
}

start() {
  local need=0
  ready "${FIRESTORE_HOST}" || need=1
  ready "${PUBSUB_HOST}" || need=1
  command -v prometheus >/dev/null 2>&1 || need=1
  command -v chromium >/dev/null 2>&1 || need=1
  [ "${need}" = 1 ] && install_missing
  if ! ready "${FIRESTORE_HOST}"; then
    setsid nohup gcloud emulators firestore start --host-port="${FIRESTORE_HOST}" --quiet \
      >"${RUN}/firestore.log" 2>&1 < /dev/null &
    echo $! >"${RUN}/firestore.pid"
  fi
  if ! ready "${PUBSUB_HOST}"; then
    setsid nohup gcloud beta emulators pubsub start --host-port="${PUBSUB_HOST}" --project="${PROJECT}" --quiet \
      >"${RUN}/pubsub.log" 2>&1 < /dev/null &
    echo $! >"${RUN}/pubsub.pid"
  fi
  wait_ready Firestore "${FIRESTORE_HOST}" "${RUN}/firestore.log"
  wait_ready Pub/Sub "${PUBSUB_HOST}" "${RUN}/pubsub.log"
}

stop() {
  for n in firestore pubsub; do
    if [ -f "${RUN}/${n}.pid" ]; then
      kill -- -"$(cat "${RUN}/${n}.pid")" 2>/dev/null || kill "$(cat "${RUN}/${n}.pid")" 2>/dev/null || true
      rm -f "${RUN}/${n}.pid"
    fi
  done
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  env)
    echo "export FIRESTORE_EMULATOR_HOST=${FIRESTORE_HOST}"
    echo "export PUBSUB_EMULATOR_HOST=${PUBSUB_HOST}"
    echo "export AUTONOMICS_PROJECT=${PROJECT}"
    ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
