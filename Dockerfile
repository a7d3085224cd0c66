# syntax=docker/dockerfile:1
# One image for every Node process of the pipeline; the command picks which one runs:
#   docker run IMAGE                                      -> the augmenter (default)
#   docker run IMAGE dist/consumers/emailer/main.js       -> the emailer
#   docker run IMAGE dist/tools/connectors.js register    -> connector registration (one-shot)
#   docker run IMAGE dist/standins/sfmc/server.js         -> a stand-in (local/test only)
#
# Signals: ENTRYPOINT is node itself, so node is PID 1. PID 1 gets no default signal
# handlers from the kernel, which is fine here: every entry point handles SIGTERM/SIGINT
# (consumers/shared/process.ts finishes the in-flight batch, commits and exits within 10 s).
# docker-compose.yml adds `init: true` (tini) as well; Kubernetes needs nothing extra.
#
# The Node version: the same as the devDependency `node` in package.json, which the tests and the
# local stack run on (test/unit/deploy/dockerfile.test.ts holds the two together). Bump both.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# ---- build: compile TypeScript with the dev dependencies ----------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY consumers/ consumers/
COPY standins/ standins/
COPY tools/ tools/
# tools/kafka-access.ts compiles config/kafka-access.json in (the ACL table)
COPY config/ config/
RUN npm run build

# ---- runtime: production dependencies, compiled code and the data folders -----------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
# The health/metrics servers (consumers, watchdog) listen on every interface of the container:
# probes and Prometheus come from outside it. Outside a container the default is 127.0.0.1.
ENV HTTP_HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/ ./dist/
# connector definitions (the connectors one-shot), Welcome org settings, Avro schemas
COPY connect/ ./connect/
COPY config/ ./config/
COPY schemas/ ./schemas/
# /data: where the stand-ins keep their files; a named volume mounted here inherits node's ownership
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 9464
# Liveness of the consumers (HTTP_PORT, default 9464). node is the only tool the slim image has.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||9464)+'/healthz',{signal:AbortSignal.timeout(2000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node"]
CMD ["dist/consumers/augmenter/main.js"]
