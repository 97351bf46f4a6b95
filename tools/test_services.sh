#!/usr/bin/env bash
# Installs and starts what the diary app's tests need besides Python packages:
# Debian's Chromium (driven by Playwright), a PostgreSQL server on loopback and espeak-ng.
# Prints the line to export for the PostgreSQL tests. Needs root (apt-get) on Debian.
set -euo pipefail

need=()
command -v chromium >/dev/null || need+=(chromium)
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
# the diary reads comments aloud with espeak-ng where the browser has no Korean voice
command -v espeak-ng >/dev/null || need+=(espeak-ng)
# Korean text and emoji in the browser tests' screenshots
[ -d /usr/share/fonts/truetype/nanum ] || need+=(fonts-nanum)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need+=(fonts-noto-color-emoji)
if ((${#need[@]})); then
    echo "installing ${need[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2 \
        || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >&2; }
fi

version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h | grep -q "^$version main"; then
    pg_createcluster "$version" main >&2
fi
pg_ctlcluster "$version" main start >/dev/null 2>&1 || true
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
pg_isready -h 127.0.0.1 >&2

runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 >&2 <<'SQL'
SELECT 'CREATE ROLE maeum LOGIN CREATEDB PASSWORD ''maeum'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'maeum')\gexec
SQL
echo "export MAEUM_TEST_POSTGRES_URL=postgresql+psycopg://maeum:maeum@127.0.0.1:5432/postgres"
