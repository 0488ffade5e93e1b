#!/usr/bin/env bash
# Makes sure a MySQL-compatible server answers on $SLUICE_MYSQL_HOST:$SLUICE_MYSQL_PORT
# (default 127.0.0.1:3306) for user root with no password, as `sluice dev`
# and the tests expect. When nothing answers there it starts a private
# MariaDB instance whose data lives under $SLUICE_DATA_DIR/mysql (default
# ./.sluice/mysql), installing Debian's mariadb-server first when it is
# missing and we are root. It never touches a server it did not start,
# except to let root log in over TCP on a fresh Debian install.
set -euo pipefail

HOST=${SLUICE_MYSQL_HOST:-127.0.0.1}
PORT=${SLUICE_MYSQL_PORT:-3306}
DATA_DIR=${SLUICE_DATA_DIR:-.sluice}
mkdir -p "$DATA_DIR"
DATA_DIR=$(cd "$DATA_DIR" && pwd)
MY_DIR="$DATA_DIR/mysql"

say() { echo "ensure-mysql: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$PORT") >/dev/null 2>&1; }

client() {
	if command -v mariadb >/dev/null 2>&1; then echo mariadb
	elif command -v mysql >/dev/null 2>&1; then echo mysql
	fi
}

root_login_ok() {
	local c
	c=$(client)
	[ -n "$c" ] || return 0 # no client to check with: let sluice report it
	"$c" --protocol=tcp -h"$HOST" -P"$PORT" -uroot -e 'SELECT 1' >/dev/null 2>&1
}

install_mariadb() {
	if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		say "no MySQL server answers on $HOST:$PORT and MariaDB is not installed."
		say "install it as root:  apt-get install -y --no-install-recommends mariadb-server mariadb-client"
		say "or point SLUICE_MYSQL_DSN / --mysql-dsn (and SLUICE_TEST_MYSQL_DSN for tests) at a running server."
		exit 1
	fi
	say "installing mariadb-server with apt (about 30 s)..."
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# Debian's package would start its own server; we start a private one.
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
	apt-get install -y -qq --no-install-recommends mariadb-server mariadb-client >/dev/null
	rm -f /usr/sbin/policy-rc.d
}

start_private() {
	local mariadbd=/usr/sbin/mariadbd
	command -v mariadbd >/dev/null 2>&1 && mariadbd=$(command -v mariadbd)
	local user_flag=()
	[ "$(id -u)" = 0 ] && user_flag=(--user=root)
	if [ ! -d "$MY_DIR/data/mysql" ]; then
		say "initialising a private MariaDB in $MY_DIR"
		mkdir -p "$MY_DIR/data"
		mariadb-install-db --no-defaults --datadir="$MY_DIR/data" --auth-root-authentication-method=normal \
			--skip-test-db "${user_flag[@]}" >"$MY_DIR/install.log" 2>&1 ||
			{ say "mariadb-install-db failed; see $MY_DIR/install.log"; exit 1; }
	fi
	say "starting private MariaDB on $HOST:$PORT (data in $MY_DIR, log in $MY_DIR/error.log)"
	# Sized for ingestion benchmarks on a small machine; see README "Benchmarks".
	nohup "$mariadbd" --no-defaults "${user_flag[@]}" --datadir="$MY_DIR/data" \
		--bind-address="$HOST" --port="$PORT" --socket="$MY_DIR/mysqld.sock" \
		--pid-file="$MY_DIR/mysqld.pid" --log-error="$MY_DIR/error.log" \
		--innodb-buffer-pool-size=1G --innodb-log-file-size=512M \
		--innodb-flush-log-at-trx-commit=2 --skip-log-bin \
		--max-connections=500 --character-set-server=utf8mb4 --collation-server=utf8mb4_bin \
		>/dev/null 2>&1 &
	for _ in $(seq 1 120); do
		if port_open && root_login_ok; then
			say "private MariaDB is up (stop it with: kill \$(cat $MY_DIR/mysqld.pid))"
			return 0
		fi
		sleep 0.5
	done
	say "private MariaDB did not come up within 60 s; see $MY_DIR/error.log"
	tail -20 "$MY_DIR/error.log" >&2 || true
	exit 1
}

if port_open; then
	if root_login_ok; then
		exit 0
	fi
	# A fresh Debian install lets root in only over the unix socket (error 1698).
	if [ "$(id -u)" = 0 ] && [ "$HOST" = 127.0.0.1 ] && [ -S /run/mysqld/mysqld.sock ]; then
		say "letting root log in over TCP with an empty password (local dev server)"
		$(client) -uroot -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket" 2>/dev/null ||
			$(client) -uroot -e "ALTER USER root@localhost IDENTIFIED WITH mysql_native_password BY ''"
		root_login_ok && exit 0
	fi
	say "a server answers on $HOST:$PORT but root cannot log in without a password."
	say "set SLUICE_MYSQL_DSN (and SLUICE_TEST_MYSQL_DSN for tests), e.g. user:pass@tcp($HOST:$PORT)/sluice"
	exit 1
fi

install_mariadb
start_private
