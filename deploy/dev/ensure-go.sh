#!/usr/bin/env bash
# Prints the path of a Go toolchain >= the one go.mod names, installing it
# when missing: Debian's golang-go (too old itself) is used only to find the
# configured Go module proxy, from which the official toolchain module
# golang.org/toolchain is fetched and unpacked under /usr/local.
set -euo pipefail
WANT=${GO_VERSION:-1.26.8}

version_ok() {
	local v
	v=$("$1" env GOVERSION 2>/dev/null | sed 's/^go//') || return 1
	[ -n "$v" ] || return 1
	[ "$(printf '%s\n%s\n' "$WANT" "$v" | sort -V | head -1)" = "$WANT" ]
}

for g in go /usr/local/go/bin/go "/usr/local/go$WANT/bin/go"; do
	if command -v "$g" >/dev/null 2>&1 && version_ok "$(command -v "$g")"; then
		command -v "$g"
		exit 0
	fi
done

if [ "$(id -u)" != 0 ]; then
	echo "ensure-go: Go >= $WANT is required; install it (https://go.dev/doc/install) or run make as root" >&2
	exit 1
fi
echo "ensure-go: installing Go $WANT from the Go module proxy..." >&2
export DEBIAN_FRONTEND=noninteractive
command -v curl >/dev/null 2>&1 && command -v unzip >/dev/null 2>&1 || {
	apt-get update -qq && apt-get install -y -qq --no-install-recommends curl unzip ca-certificates >/dev/null
}
proxy=${GOPROXY:-}
if [ -z "$proxy" ]; then
	command -v go >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq --no-install-recommends golang-go >/dev/null; }
	proxy=$(go env GOPROXY)
fi
proxy=${proxy%%,*}
arch=$(dpkg --print-architecture)
tmp=$(mktemp -d)
curl -fsSL -o "$tmp/go.zip" "$proxy/golang.org/toolchain/@v/v0.0.1-go$WANT.linux-$arch.zip"
unzip -q "$tmp/go.zip" -d "$tmp/x"
rm -rf "/usr/local/go$WANT"
mv "$tmp/x/golang.org/toolchain@v0.0.1-go$WANT.linux-$arch" "/usr/local/go$WANT"
chmod +x "/usr/local/go$WANT/bin/"* "/usr/local/go$WANT/pkg/tool/"*/* 2>/dev/null || true
rm -rf "$tmp"
echo "/usr/local/go$WANT/bin/go"
