#!/usr/bin/env bash
# awscli.sh DIR — puts Debian's AWS CLI v2 (the awscli package of Debian 12,
# 2.9.19, which speaks SQS's query protocol) into DIR/awscli and writes
# DIR/aws, a wrapper that runs it with the system's /usr/bin/python3.
#
# The tests run the README's `aws sqs` examples with exactly this CLI, so it
# must not be whatever `aws` comes first on PATH (a newer CLI speaks SQS's
# JSON protocol). Nothing is installed system-wide: the packages are fetched
# with `apt-get download` from the machine's Debian sources and unpacked
# with `dpkg -x`. Running it again does nothing once DIR/aws works.
#
# Needs: a Debian 12 (bookworm) machine with /usr/bin/python3 (3.11). As
# root, missing package lists (`apt-get update`) and a missing python3 are
# fetched; otherwise the script says what to run.
set -euo pipefail

dir=${1:?usage: awscli.sh DIR}
want=2.9.19
root="$dir/awscli"
wrapper="$dir/aws"

if [[ -x $wrapper ]] && "$wrapper" --version 2>/dev/null | grep -q "^aws-cli/$want "; then
	exit 0
fi

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	else
		echo "awscli.sh: needs '$*' (run it as root, or install Debian's awscli package yourself)" >&2
		exit 1
	fi
}

if [[ ! -x /usr/bin/python3 ]]; then
	as_root apt-get update -qq
	as_root apt-get install -y -qq --no-install-recommends python3 >/dev/null
fi
pyver=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [[ $pyver != 3.11 ]]; then
	echo "awscli.sh: Debian's awscli $want is built for Python 3.11; /usr/bin/python3 is $pyver" >&2
	exit 1
fi

# The package and the Python libraries it needs (not the interpreter, which
# is the system's): every python3-* package it depends on, recursively.
pkgs() {
	apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
		--no-breaks --no-replaces --no-enhances awscli 2>/dev/null |
		grep -E '^(awscli|python3-[a-z0-9.-]+|docutils-common)$' |
		grep -vE '^python3-minimal$' | sort -u
}
version=$(apt-cache show awscli 2>/dev/null | sed -n 's/^Version: //p' | head -1)
if [[ $version != "$want"-* ]]; then
	as_root apt-get update -qq
	version=$(apt-cache show awscli 2>/dev/null | sed -n 's/^Version: //p' | head -1)
fi
if [[ $version != "$want"-* ]]; then
	echo "awscli.sh: the Debian sources offer awscli '$version', not $want (a Debian 12 machine has it)" >&2
	exit 1
fi

debs=$(mktemp -d)
trap 'rm -rf "$debs"' EXIT
chmod 777 "$debs" # as root, apt-get download writes as the _apt user
echo "fetching Debian's awscli $version and its Python libraries into $root (first run only)…"
(cd "$debs" && apt-get download -qq $(pkgs))
rm -rf "$root.new"
mkdir -p "$root.new"
for deb in "$debs"/*.deb; do
	dpkg -x "$deb" "$root.new"
done
rm -rf "$root"
mv "$root.new" "$root"

cat >"$wrapper.new" <<EOF
#!/bin/sh
# Debian's awscli $version, unpacked next to this file by tools/awscli.sh;
# run with the system's Python, whatever python3 or aws comes first on PATH.
root="\$(dirname "\$(readlink -f "\$0")")/awscli"
PYTHONPATH="\$root/usr/lib/python3/dist-packages" exec /usr/bin/python3 -s "\$root/usr/bin/aws" "\$@"
EOF
chmod +x "$wrapper.new"
mv "$wrapper.new" "$wrapper"
"$wrapper" --version
