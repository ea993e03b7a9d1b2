#!/usr/bin/env bash
# test-deps.sh installs the programs the e2e tests run, when they are missing.
# It is idempotent and quiet when everything is already present.
#
# Needed:
#   kcat                     (TestKcat, TestClientKcat, TestGroupKcatAndConfluentPython,
#                             TestSecurityKcatOverTLS)
#                                                   Debian package: kcat
#   python3 confluent_kafka  (TestGroupKcatAndConfluentPython,
#                             TestSecurityConfluentPythonScram; run with
#                             /usr/bin/python3 so Debian's packages are seen)
#                                                   Debian package: python3-confluent-kafka
#   python3 kafka, snappy,   (TestClientKafkaPython; kafka-python compresses with
#   lz4, zstandard            these modules, which its package does not pull in)
#                                                   Debian packages: python3-kafka,
#                                                   python3-snappy, python3-lz4,
#                                                   python3-zstandard
#   redis-server             (routing's Redis store tests, e2e clusters)
#                                                   Debian package: redis-server
#   node, npm                (TestClientKafkaJS, which installs kafkajs itself)
#                                                   Debian packages: nodejs, npm
set -euo pipefail

# NEEDED lists "check-command|debian-package" pairs. A check command that exits 0
# means the dependency is present.
NEEDED=(
	"command -v kcat|kcat"
	"command -v redis-server|redis-server"
	"/usr/bin/python3 -c 'import confluent_kafka'|python3-confluent-kafka"
	"/usr/bin/python3 -c 'import kafka'|python3-kafka"
	"/usr/bin/python3 -c 'import snappy'|python3-snappy"
	"/usr/bin/python3 -c 'import lz4.frame'|python3-lz4"
	"/usr/bin/python3 -c 'import zstandard'|python3-zstandard"
	"command -v node|nodejs"
	"command -v npm|npm"
)

missing=()
for entry in "${NEEDED[@]}"; do
	check=${entry%%|*}
	pkg=${entry##*|}
	if ! bash -c "$check" >/dev/null 2>&1; then
		missing+=("$pkg")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "test-deps: missing Debian packages: ${missing[*]}"

if ! command -v apt-get >/dev/null 2>&1; then
	echo "test-deps: cannot install ${missing[*]}: apt-get not found (not a Debian-based system);" \
		"install them with your package manager and run again" >&2
	exit 1
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		sudo=(sudo)
	else
		echo "test-deps: cannot install ${missing[*]}: not root and sudo is not available;" \
			"run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
fi

# apt's own output goes to a file, shown only when something fails.
aptlog=$(mktemp)
trap 'rm -f "$aptlog"' EXIT
run_apt() {
	echo "test-deps: running: ${sudo[*]:+${sudo[*]} }apt-get $*"
	if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "$@" >"$aptlog" 2>&1; then
		cat "$aptlog" >&2
		echo "test-deps: apt-get $* failed; cannot install ${missing[*]}" >&2
		exit 1
	fi
}
run_apt update -q
run_apt install -y -q --no-install-recommends "${missing[@]}"

# Check again: a package can install without providing what we looked for.
for entry in "${NEEDED[@]}"; do
	check=${entry%%|*}
	pkg=${entry##*|}
	if ! bash -c "$check" >/dev/null 2>&1; then
		echo "test-deps: installed $pkg but the check still fails: $check" >&2
		exit 1
	fi
done
echo "test-deps: installed ${missing[*]}"
