# Shared setup for scripts/test and scripts/demo; sourced, not run.
# Finds a Python >= 3.12 (on PATH or under pyenv), keeps a virtualenv in .venv
# and installs the project into it when pyproject.toml changes.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

log() { printf '==> %s\n' "$*" >&2; }

python_ok() {
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
  local candidate
  local candidates=()
  [ -n "${DJ_QUEUE_PYTHON:-}" ] && candidates+=("$DJ_QUEUE_PYTHON")
  candidates+=(python3.13 python3.12 python3)
  local pyenv_root="${PYENV_ROOT:-}"
  if [ -z "$pyenv_root" ] && command -v pyenv >/dev/null 2>&1; then
    pyenv_root="$(pyenv root)"
  fi
  [ -z "$pyenv_root" ] && pyenv_root="$HOME/.pyenv"
  if [ -d "$pyenv_root/versions" ]; then
    # Newest first.
    while IFS= read -r candidate; do
      candidates+=("$candidate")
    done < <(ls -d "$pyenv_root"/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -rV)
  fi
  for candidate in "${candidates[@]}"; do
    if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done
  echo "No Python 3.12 or newer found (looked on PATH and under $pyenv_root/versions)." >&2
  echo "Install one, or point DJ_QUEUE_PYTHON at it." >&2
  return 1
}

# ensure_venv EXTRAS: EXTRAS is "" for the package alone or "dev" for the test tooling.
ensure_venv() {
  local extras="$1"
  if [ ! -x "$VENV/bin/python" ] || ! python_ok "$VENV/bin/python"; then
    local python
    python="$(find_python)" || exit 1
    log "creating .venv with $python"
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
  fi
  local target="."
  [ -n "$extras" ] && target=".[$extras]"
  local stamp="$VENV/.installed-${extras:-base}"
  local digest
  digest="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    log "installing dj-queue${extras:+[$extras]} into .venv"
    (cd "$ROOT" && "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$target") || {
      echo "pip install failed; see the output above." >&2
      exit 1
    }
    echo "$digest" > "$stamp"
  fi
}

# mysqlclient compiles against the MariaDB client library; bring it in from apt.
ensure_mysql_build_deps() {
  if pkg-config --exists libmariadb 2>/dev/null || pkg-config --exists mysqlclient 2>/dev/null; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing libmariadb-dev and pkg-config from apt"
    apt-get update -qq >/dev/null && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmariadb-dev pkg-config >/dev/null || {
        echo "apt-get install libmariadb-dev pkg-config failed." >&2
        exit 1
      }
  else
    echo "mysqlclient needs libmariadb-dev and pkg-config; install them (as root: apt-get install libmariadb-dev pkg-config)." >&2
    exit 1
  fi
}

# The browser tests drive Debian's Chromium through Playwright (playwright's own
# browser download cannot reach its host here). Never fails the setup: without
# Chromium those tests skip and say why (in CI, CI=true, they fail instead).
ensure_chromium() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    return 0
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "warning: no /usr/bin/chromium; the browser tests will skip (as root: apt-get install chromium chromium-driver)." >&2
    return 0
  fi
  log "installing chromium and chromium-driver from apt"
  # Refresh the package lists only when apt does not know the package yet.
  if ! apt-cache show chromium >/dev/null 2>&1 || ! apt-cache show chromium-driver >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || {
    echo "warning: apt-get install chromium chromium-driver failed; the browser tests will skip." >&2
    return 0
  }
}

ensure_postgresql() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && return 0
    sleep 0.5
  done
  echo "PostgreSQL is not answering on 127.0.0.1:5432." >&2
  exit 1
}

ensure_mariadb() {
  if mariadb-admin -uroot -h127.0.0.1 ping >/dev/null 2>&1; then return 0; fi
  log "starting MariaDB"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  for _ in $(seq 1 60); do
    mariadb-admin -uroot -h127.0.0.1 ping >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "MariaDB is not answering on 127.0.0.1:3306." >&2
  exit 1
}
