#!/usr/bin/env bash
# Creates a small git repository with a base branch `main` and an agent branch
# `agent/change` that touches docs, app logic, auth code and a migration.
# Usage: examples/make-sample-repo.sh DIR
set -euo pipefail
dir=${1:?usage: make-sample-repo.sh DIR}
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
git init -q -b main
git config user.name "Sample Maintainer"
git config user.email "maintainer@example.com"
mkdir -p .github app/auth docs migrations
cat > .github/CODEOWNERS <<'OWNERS'
*               @acme/devs
/app/auth/      @acme/security
/migrations/    @acme/dba
/.github/       @acme/security
OWNERS
cat > .github/merge-gate.yml <<'POLICY'
version: 1
fallback_owners: ["@acme/security"]
POLICY
printf 'def handler(request):\n    return "ok"\n' > app/views.py
printf 'def login(user, password):\n    return check(user, password)\n' > app/auth/login.py
printf '# Sample\n' > docs/index.md
git add -A
git commit -q -m "initial"
git checkout -q -b agent/change
printf '# Sample\n\nHow to log in.\n' > docs/index.md
printf 'def handler(request):\n    return "ok!"\n' > app/views.py
printf 'def login(user, password):\n    audit(user)\n    return check(user, password)\n' > app/auth/login.py
printf 'ALTER TABLE users ADD COLUMN last_login timestamp;\n' > migrations/0002_last_login.sql
git add -A
git -c user.name="devin-ai-integration[bot]" -c user.email="158243242+devin-ai-integration[bot]@users.noreply.github.com" \
    commit -q -m "Record last login" -m "Co-authored-by: Claude <noreply@anthropic.com>"
echo "sample repository ready in $dir (base: main, head: agent/change)"
