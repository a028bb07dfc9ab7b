#!/usr/bin/env bash
# Terraform checks itself: `terraform validate` and a plan of each
# environments/*.tfvars with dummy credentials, refresh off and no
# network, when the google and google-beta providers that versions.tf asks
# for are installed on this machine (a filesystem mirror: the implicit
# plugin directories or a filesystem_mirror of the CLI configuration).
# Without them it says so in one line and succeeds.
#
# The configuration is copied to a scratch directory with a local backend
# (an override file), so the check leaves no .terraform directory, lock file
# or state in the checkout and two runs do not collide. Terraform is given
# a CLI configuration of its own that installs only from the directories
# found, and proxies that lead nowhere, so nothing is downloaded and no
# provider call reaches Google. Usage: tf-check.sh [-v] (-v prints the
# whole plans).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TF_DIR="${ROOT}/terraform"
VERBOSE=0
[ "${1:-}" = "-v" ] && VERBOSE=1

skip() { echo "tf-check: SKIPPED terraform validate and plan: $*"; exit 0; }

TERRAFORM="${TERRAFORM:-terraform}"
command -v "${TERRAFORM}" >/dev/null 2>&1 || skip "terraform is not on PATH"

platform="$(env TF_CLI_CONFIG_FILE=/dev/null CHECKPOINT_DISABLE=1 "${TERRAFORM}" version -json 2>/dev/null |
  sed -n 's/.*"platform": *"\([^"]*\)".*/\1/p')"
[ -n "${platform}" ] || platform="$(go env GOOS 2>/dev/null)_$(go env GOARCH 2>/dev/null)"

# The major version versions.tf requires of a provider ("~> 7.0" => 7).
required_major() {
  awk -v p="$1" '
    $0 ~ "^[[:space:]]*" p "[[:space:]]*=[[:space:]]*\\{" { in_p = 1; next }
    in_p && /version/ { if (match($0, /[0-9]+/)) print substr($0, RSTART, RLENGTH); exit }
    in_p && /\}/ { in_p = 0 }
  ' "${TF_DIR}/versions.tf"
}

# Directories Terraform installs providers from without a network: the
# filesystem_mirror paths of the CLI configuration when it has a
# provider_installation block, the implicit local mirrors otherwise.
cli_config="${TF_CLI_CONFIG_FILE:-${HOME}/.terraformrc}"
mirrors=()
if [ -f "${cli_config}" ] && grep -q 'provider_installation' "${cli_config}"; then
  while IFS= read -r p; do
    mirrors+=("${p/#\~/${HOME}}")
  done < <(awk '/filesystem_mirror/ { fm = 1 } fm && /path[[:space:]]*=/ {
      if (match($0, /"[^"]*"/)) print substr($0, RSTART + 1, RLENGTH - 2); fm = 0 }' "${cli_config}")
else
  mirrors+=("${TF_DIR}/terraform.d/plugins" "${HOME}/.terraform.d/plugins"
    "${XDG_DATA_HOME:-${HOME}/.local/share}/terraform/plugins")
  IFS=: read -r -a data_dirs <<<"${XDG_DATA_DIRS:-/usr/local/share:/usr/share}"
  for d in "${data_dirs[@]}"; do mirrors+=("${d}/terraform/plugins"); done
fi

# find_provider TYPE MAJOR: the mirror holding hashicorp/TYPE MAJOR.x for
# this platform, unpacked or packed.
find_provider() {
  local type=$1 major=$2 m base
  for m in "${mirrors[@]}"; do
    base="${m}/registry.terraform.io/hashicorp/${type}"
    [ -d "${base}" ] || continue
    if compgen -G "${base}/${major}.*/${platform}/terraform-provider-${type}*" >/dev/null ||
      compgen -G "${base}/terraform-provider-${type}_${major}.*_${platform}.zip" >/dev/null; then
      echo "${m}"
      return 0
    fi
  done
  return 1
}

declare -A found
for type in google google-beta; do
  major="$(required_major "${type}")"
  [ -n "${major}" ] || { echo "tf-check: no version constraint for ${type} in terraform/versions.tf" >&2; exit 1; }
  found[${type}]="$(find_provider "${type}" "${major}")" ||
    skip "no hashicorp/${type} ${major}.x provider for ${platform} in ${mirrors[*]}"
done

work="$(mktemp -d "${TMPDIR:-/tmp}/tf-check.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
tar -C "${TF_DIR}" --exclude=.terraform --exclude=.terraform.lock.hcl --exclude='*.tfstate*' \
  --exclude='*.go' --exclude=docker -cf - . | tar -C "${work}" -xf -
cat >"${work}/zz_tf_check_override.tf" <<'EOF'
# Written by .ci/tf-check.sh: state stays in the scratch directory.
terraform {
  backend "local" {}
}
EOF
{
  echo "disable_checkpoint = true"
  echo "provider_installation {"
  for type in google google-beta; do
    printf '  filesystem_mirror {\n    path    = "%s"\n    include = ["registry.terraform.io/hashicorp/%s"]\n  }\n' "${found[${type}]}" "${type}"
  done
  echo "}"
} >"${work}/terraformrc"

# A stand-in for `make stage`'s archive: plan only hashes it.
printf 'tf-check stand-in archive\n' >"${work}/archive"
archive="${work}/source-$(sha256sum "${work}/archive" | cut -d' ' -f1).zip"
mv "${work}/archive" "${archive}"

# Dummy credentials, nothing else: an access token is used as given, and
# any request would go to a proxy that is not there. No TF_* (variables,
# extra arguments, workspace) or Google setting of the caller's environment
# reaches the check, except TF_LOG and TF_LOG_PATH.
clean_env=()
while IFS= read -r name; do
  case "${name}" in
    TF_LOG | TF_LOG_PATH) ;;
    TF_* | GOOGLE_* | GCLOUD_* | CLOUDSDK_* | https_proxy | http_proxy | no_proxy) clean_env+=(-u "${name}") ;;
  esac
done < <(compgen -e)
tf() {
  (cd "${work}" && env ${clean_env[@]+"${clean_env[@]}"} \
    TF_CLI_CONFIG_FILE="${work}/terraformrc" TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1 \
    GOOGLE_OAUTH_ACCESS_TOKEN=dummy HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY= \
    "${TERRAFORM}" "$@" -no-color)
}

run() { # run LOG ARGS...: run terraform, print the log if it fails
  local log="${work}/$1.log"
  shift
  if ! tf "$@" >"${log}" 2>&1; then
    echo "tf-check: terraform $* failed:" >&2
    cat "${log}" >&2
    exit 1
  fi
}

echo "tf-check: google from ${found[google]}, google-beta from ${found[google-beta]} (${platform})"
run init init -input=false
grep -E '^- (Installed|Using) hashicorp/' "${work}/init.log" | sed 's/^/tf-check: /'
run validate validate
echo "tf-check: validate: $(grep -v '^$' "${work}/validate.log" | tail -n 1)"
if grep -q 'Warning:' "${work}/validate.log"; then cat "${work}/validate.log"; fi

for file in "${TF_DIR}"/environments/*.tfvars; do
  env_name="$(basename "${file}" .tfvars)"
  vars=(-var-file="environments/${env_name}.tfvars" -var "project=tf-check-project" -var "source_archive=${archive}")
  # The deployment gives dev its prefix (Cloud Build's _PREFIX).
  [ "${env_name}" = dev ] && vars+=(-var "prefix=dev-")
  run "plan-${env_name}" plan -refresh=false -lock=false -input=false "${vars[@]}"
  [ "${VERBOSE}" = 1 ] && cat "${work}/plan-${env_name}.log"
  if grep -q 'Warning:' "${work}/plan-${env_name}.log" && [ "${VERBOSE}" = 0 ]; then
    sed -n '/Warning:/,$p' "${work}/plan-${env_name}.log"
  fi
  echo "tf-check: plan ${env_name}: $(grep -E '^(Plan:|No changes)' "${work}/plan-${env_name}.log" || echo '(no summary line)')"
done
