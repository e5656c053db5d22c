#!/usr/bin/env bash
# `npm run check:package`: the package as it would be published, used by a fresh consumer project.
# Packs the library, installs the tarball with its peers (the versions pinned here) into a temporary project, then:
# type-checks an import of every public module under `moduleResolution` nodenext and bundler (with skipLibCheck off,
# so the published .d.ts must stand alone), checks that internal modules are not importable, and runs a validation
# against the in-memory fake identity provider with plain Node. Needs the npm registry (it installs the peers).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
version_of() { node -p "require('./package.json').devDependencies['$1']"; }

npm run build --silent
tarball="$(npm pack --silent --pack-destination "$work" | tail -n 1)"
cd "$work"
echo '{ "name": "consumer", "private": true, "type": "module" }' > package.json
npm install --silent --no-audit --no-fund "./$tarball" \
  "effect@$(cd "$root" && version_of effect)" \
  "@effect/platform@$(cd "$root" && version_of @effect/platform)" \
  "typescript@$(cd "$root" && version_of typescript)" \
  "@types/node@$(cd "$root" && version_of @types/node)"

# Every public module, as a consumer would name it (internal/ is not part of the API).
modules="$(cd "$root/src" && find . -name '*.ts' ! -path './internal/*' ! -name 'index.ts' | sed 's|^\./||; s|\.ts$||' | sort)"
{
  echo 'import * as Root from "effect-jwks"'
  i=0
  for module in $modules; do
    echo "import * as M$i from \"effect-jwks/$module\""
    i=$((i + 1))
  done
  echo "export const modules = [Root$(for j in $(seq 0 $((i - 1))); do printf ', M%s' "$j"; done)]"
} > imports.ts
cat > app.ts <<'TS'
import { Effect } from "effect"
import * as Oidc from "effect-jwks/providers/Oidc"
import * as FakeIdp from "effect-jwks/testing/FakeIdp"
import * as TokenValidator from "effect-jwks/TokenValidator"
import { modules } from "./imports.js"

const program = Effect.gen(function*() {
  const idp = yield* FakeIdp.FakeIdp
  const token = yield* idp.sign({ sub: "consumer" })
  const principal = yield* TokenValidator.validate(token).pipe(
    Effect.provide(Oidc.layer({ issuer: idp.issuer, audience: idp.audience, cache: { backgroundRefresh: false } }))
  )
  return principal.id
})
const id = await Effect.runPromise(program.pipe(Effect.provide(FakeIdp.layerTest())))
if (id !== "consumer") throw new Error(`expected the principal "consumer", got ${id}`)
console.log(`check-package: ${modules.length} modules imported; a token validated for "${id}"`)
TS
cat > internal.ts <<'TS'
// @ts-expect-error internal modules are not exported
import * as Lru from "effect-jwks/internal/lru"
export const internal = Lru
TS
for resolution in nodenext bundler; do
  module=$([ "$resolution" = nodenext ] && echo nodenext || echo esnext)
  cat > tsconfig.json <<JSON
{ "compilerOptions": { "strict": true, "exactOptionalPropertyTypes": true, "module": "$module",
  "moduleResolution": "$resolution", "target": "es2022", "skipLibCheck": false, "types": ["node"], "outDir": "out" },
  "files": ["app.ts", "imports.ts", "internal.ts"] }
JSON
  npx tsc -p . || { echo "check-package: type errors with moduleResolution $resolution"; exit 1; }
  echo "check-package: type-checks with moduleResolution $resolution"
done
node out/app.js
node --input-type=module -e 'import("effect-jwks/package.json", { with: { type: "json" } }).then(
  ({ default: pkg }) => console.log(`check-package: effect-jwks/package.json is importable (version ${pkg.version})`))'
test -f node_modules/effect-jwks/LICENSE || { echo "check-package: no LICENSE in the package"; exit 1; }
for linked in docs/jwks-cache.md docs/performance.md SECURITY.md bench/refresh-latency.svg; do
  test -f "node_modules/effect-jwks/$linked" || { echo "check-package: README links $linked, not in the package"; exit 1; }
done
node --input-type=module -e 'import("effect-jwks/internal/lru").then(
  () => { console.error("check-package: effect-jwks/internal/lru is importable"); process.exit(1) },
  (error) => { if (error.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") throw error; console.log("check-package: internal modules are not importable") })'

