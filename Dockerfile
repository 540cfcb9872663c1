# Touchstream: one image for every role (collector, processor, api, alerter, migrate).
# The CLI runs the TypeScript sources through tsx; only the dashboard page is built.
#
#   docker build -t touchstream .
#   docker run --rm -p 3000:3000 -e TOUCHSTREAM_INGEST_KEYS=... -e TOUCHSTREAM_QUERY_KEYS=... touchstream
#
# Debian (glibc), not Alpine: chDB's native library, loaded by the store package, needs glibc.
FROM node:20-bookworm-slim

WORKDIR /app

# Manifests first, so the dependency layer is rebuilt only when they change.
# npm ci needs the package.json of every workspace named in package-lock.json:
# a new workspace (packages/*, services/*, apps/*) must be added here, or the build fails.
# tests/integration/compose.test.ts checks that this list is complete.
COPY package.json package-lock.json ./
COPY packages/contracts/package.json packages/contracts/
COPY packages/config/package.json packages/config/
COPY packages/http/package.json packages/http/
COPY packages/store/package.json packages/store/
COPY packages/bus/package.json packages/bus/
COPY packages/engine/package.json packages/engine/
COPY packages/sdk/package.json packages/sdk/
COPY packages/reports/package.json packages/reports/
COPY services/alerter/package.json services/alerter/
COPY services/api/package.json services/api/
COPY services/collector/package.json services/collector/
COPY services/dashboard/package.json services/dashboard/
COPY services/processor/package.json services/processor/
COPY apps/cli/package.json apps/cli/

# tsx is a dependency of apps/cli, so leaving out devDependencies keeps the runtime.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY packages packages
COPY services services
COPY apps apps
COPY samples samples

# The dashboard page (served at / by the api role); its sources were not there at npm ci.
RUN npm run build -w @touchstream/dashboard

# The embedded engine's default data directory (TOUCHSTREAM_DATA_DIR=./.touchstream),
# used only when no TOUCHSTREAM_CLICKHOUSE_URL is set; it must be writable by `node`.
RUN mkdir -p /app/.touchstream && chown node:node /app/.touchstream

# Binding 0.0.0.0 makes the server refuse to start without TOUCHSTREAM_INGEST_KEYS and
# TOUCHSTREAM_QUERY_KEYS (API.md): a container is never reachable with auth off.
ENV NODE_ENV=production \
    TOUCHSTREAM_HOST=0.0.0.0

EXPOSE 3000

USER node

# Every role, including processor- and alerter-only processes, serves /healthz on
# TOUCHSTREAM_PORT (3000 unless overridden; keep the check in step if you change it).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.TOUCHSTREAM_PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

ENTRYPOINT ["node", "apps/cli/bin/touchstream.js"]
CMD ["start"]
