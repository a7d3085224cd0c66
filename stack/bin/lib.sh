# Shared by stack/bin/*: settings (defaults < .env < environment), secrets, process control.
# shellcheck shell=bash

step() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
ok() { printf '[%s] \033[32mok\033[0m %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { printf '[%s] \033[31mfailed\033[0m %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

# .env overrides the defaults below; the caller's environment overrides .env.
load_settings() {
  local line name
  # The Node the image runs (devDependency `node` in package.json), once npm ci has put it there.
  case ":$PATH:" in *":$ROOT/node_modules/.bin:"*) ;; *) [ ! -x "$ROOT/node_modules/.bin/node" ] || PATH="$ROOT/node_modules/.bin:$PATH" ;; esac
  if [ -f "$ROOT/.env" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
      [[ $line =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
      name=${BASH_REMATCH[1]}
      [ -n "${!name+x}" ] || export "$name=${BASH_REMATCH[2]}"
    done < "$ROOT/.env"
  fi
  : "${STATE_DIR:=.state}"
  case $STATE_DIR in /*) ;; *) STATE_DIR="$ROOT/$STATE_DIR" ;; esac
  : "${KAFKA_PORT:=9092}" "${KAFKA_CONTROLLER_PORT:=9093}" "${CONNECT_PORT:=8083}" "${KAFKA_SASL_PORT:=9094}" "${KAFKA_MTLS_PORT:=9076}"
  : "${REGISTRY_PORT:=8081}" "${REGISTRY_MGMT_PORT:=9081}" "${DB_PORT:=3307}" "${DB_HOST:=127.0.0.1}"
  : "${SFMC_STANDIN_PORT:=8090}" "${DW_STANDIN_PORT:=8091}"
  : "${AUGMENTER_HTTP_PORT:=9464}" "${EMAILER_HTTP_PORT:=9465}" "${WATCHDOG_HTTP_PORT:=9466}" "${DELIVERY_STATUS_HTTP_PORT:=9467}" "${DELIVERY_DB_USER:=welcome_delivery}"
  # the local watchdog restarts only the pipeline's connectors (tests put scratch connectors
  # on the same worker and fail them on purpose); unset in production: every connector
  : "${WATCHDOG_CONNECTORS=members-source,welcome-audit,welcome-delivery-status}"
  : "${DLQ_RETENTION_MS:=-1}"
  : "${SECURED_AUGMENTER_HTTP_PORT:=9468}" "${SECURED_EMAILER_HTTP_PORT:=9469}" "${SECURED_DELIVERY_STATUS_HTTP_PORT:=9077}"
  : "${REGISTRY_JAVA_HOME:=/usr/lib/jvm/temurin-25-jdk-amd64}"
  # KAFKA_NODES=3: a local three-node KRaft cluster (each node broker and controller), nodes 2
  # and 3 on their own PLAINTEXT and controller ports; every topic then gets 3 replicas and
  # min.insync.replicas=2 (the broker defaults, which every topic we create inherits).
  : "${KAFKA_NODES:=1}" "${KAFKA_2_PORT:=9070}" "${KAFKA_2_CONTROLLER_PORT:=9071}" "${KAFKA_3_PORT:=9072}" "${KAFKA_3_CONTROLLER_PORT:=9073}" \
    "${KAFKA_2_SASL_PORT:=9074}" "${KAFKA_3_SASL_PORT:=9075}" "${KAFKA_2_MTLS_PORT:=9078}" "${KAFKA_3_MTLS_PORT:=9079}"
  case $KAFKA_NODES in
    1) : "${KAFKA_BOOTSTRAP_SERVERS:=127.0.0.1:$KAFKA_PORT}" "${KAFKA_REPLICATION_FACTOR:=1}" "${KAFKA_MIN_ISR:=1}"
       KAFKA_SASL_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_SASL_PORT ;;
    3) : "${KAFKA_BOOTSTRAP_SERVERS:=127.0.0.1:$KAFKA_PORT,127.0.0.1:$KAFKA_2_PORT,127.0.0.1:$KAFKA_3_PORT}" "${KAFKA_REPLICATION_FACTOR:=3}" "${KAFKA_MIN_ISR:=2}"
       KAFKA_SASL_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_SASL_PORT,127.0.0.1:$KAFKA_2_SASL_PORT,127.0.0.1:$KAFKA_3_SASL_PORT ;;
    *) fail "KAFKA_NODES must be 1 or 3 (is $KAFKA_NODES)" ;;
  esac
  : "${KAFKA_BOOTSTRAP_SERVERS:=127.0.0.1:$KAFKA_PORT}" "${REGISTRY_URL:=http://127.0.0.1:$REGISTRY_PORT}"
  : "${CONNECT_URL:=http://127.0.0.1:$CONNECT_PORT}" "${CONNECT_FLAVOUR:=mariadb}"
  # Connect's REST API asks every caller for this operator's credentials (password: secrets.env)
  : "${CONNECT_REST_USER:=operator}"
  : "${DW_API_URL:=http://127.0.0.1:$DW_STANDIN_PORT}" "${SFMC_AUTH_URL:=http://127.0.0.1:$SFMC_STANDIN_PORT}"
  : "${SFMC_CLIENT_ID:=local-client}" "${CDC_SERVER_ID:=184054}" "${DB_SERVER_ID:=1}" "${TOPIC_PARTITIONS:=6}"
  : "${DLQ_REPLICATION_FACTOR:=$KAFKA_REPLICATION_FACTOR}" "${CDC_DB_USER:=debezium}" "${SINK_DB_USER:=welcome_audit}" "${EMAILER_DB_USER:=welcome_emailer}" "${FORGET_DB_USER:=welcome_forget}"
  : "${WELCOME_ORGS_FILE:=$ROOT/config/welcome-orgs.json}"
  # The local MariaDB serves TLS with a certificate of the stack's CA ($STATE_DIR/tls): the
  # connectors (connect/flavours/mariadb), the emailer and the preflight verify it, host name
  # included; the users Connect logs in as are REQUIRE SSL (stack/sql/02-users.sh).
  : "${DB_SSL_CA_FILE:=$STATE_DIR/tls/ca.crt}" "${DB_SSL_TRUSTSTORE:=$STATE_DIR/tls/truststore.p12}" "${DB_REQUIRE_SSL:=1}"
  # Monitoring: JMX exporter agents in the broker and Connect, the local Prometheus, and the
  # Connect watchdog's /metrics it scrapes. Not 9090: Debian's prometheus package (installed
  # for promtool) starts a system server there under systemd; ours never shares it.
  : "${KAFKA_METRICS_PORT:=9404}" "${CONNECT_METRICS_PORT:=9405}" "${PROMETHEUS_PORT:=9490}" "${WATCHDOG_HTTP_PORT:=9466}"
  # Local Prometheus only: every duration in monitoring/alerts.yml (for:, [range]) divided by
  # this, so a local alert fires in seconds; production loads the file unchanged.
  : "${ALERT_TIME_SCALE:=20}"
  # the bench's extra consumer instances: augmenter i on BASE+i, emailer i on BASE+5+i (i = 2, 3)
  : "${BENCH_INSTANCE_PORT_BASE:=9470}"
  DIST="$STATE_DIR/dist" PIDS="$STATE_DIR/pids" LOGS="$STATE_DIR/logs"
  mkdir -p "$PIDS" "$LOGS"
  load_secrets
  export STATE_DIR KAFKA_PORT KAFKA_CONTROLLER_PORT CONNECT_PORT REGISTRY_PORT REGISTRY_MGMT_PORT DB_PORT DB_HOST \
    SFMC_STANDIN_PORT DW_STANDIN_PORT AUGMENTER_HTTP_PORT EMAILER_HTTP_PORT KAFKA_BOOTSTRAP_SERVERS REGISTRY_URL \
    CONNECT_URL CONNECT_REST_USER CONNECT_FLAVOUR DW_API_URL SFMC_AUTH_URL SFMC_CLIENT_ID CDC_SERVER_ID DB_SERVER_ID TOPIC_PARTITIONS \
    CDC_DB_USER SINK_DB_USER EMAILER_DB_USER FORGET_DB_USER WELCOME_ORGS_FILE DIST DLQ_REPLICATION_FACTOR KAFKA_SASL_PORT \
    WATCHDOG_HTTP_PORT WATCHDOG_CONNECTORS DLQ_RETENTION_MS KAFKA_METRICS_PORT CONNECT_METRICS_PORT PROMETHEUS_PORT ALERT_TIME_SCALE DELIVERY_STATUS_HTTP_PORT DELIVERY_DB_USER SECURED_AUGMENTER_HTTP_PORT SECURED_EMAILER_HTTP_PORT \
    KAFKA_NODES KAFKA_2_PORT KAFKA_2_CONTROLLER_PORT KAFKA_3_PORT KAFKA_3_CONTROLLER_PORT KAFKA_REPLICATION_FACTOR KAFKA_MIN_ISR \
    KAFKA_2_SASL_PORT KAFKA_3_SASL_PORT KAFKA_SASL_BOOTSTRAP_SERVERS BENCH_INSTANCE_PORT_BASE \
    SECURED_DELIVERY_STATUS_HTTP_PORT DB_SSL_CA_FILE DB_SSL_TRUSTSTORE DB_REQUIRE_SSL KAFKA_MTLS_PORT KAFKA_2_MTLS_PORT KAFKA_3_MTLS_PORT
}

# Local secrets are generated once into $STATE_DIR/secrets.env (mode 600, never in git);
# a value already in the environment wins, which is how production passes its own.
SECRET_NAMES=(CDC_DB_PASSWORD SINK_DB_PASSWORD EMAILER_DB_PASSWORD DW_API_TOKEN SFMC_CLIENT_SECRET DELIVERY_DB_PASSWORD
  KAFKA_ADMIN_PASSWORD KAFKA_AUGMENTER_PASSWORD KAFKA_EMAILER_PASSWORD KAFKA_DELIVERY_PASSWORD KAFKA_CONNECT_PASSWORD KAFKA_REGISTRY_PASSWORD
  DB_SSL_TRUSTSTORE_PASSWORD CONNECT_REST_PASSWORD FORGET_DB_PASSWORD WELCOME_FORGET_KEY)
load_secrets() {
  local file="$STATE_DIR/secrets.env" name
  # a name added since the file was written gets its value appended
  ( umask 077; touch "$file"; for name in "${SECRET_NAMES[@]}"; do
      grep -q "^$name=" "$file" || printf '%s=%s\n' "$name" "$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')" >> "$file"
    done )
  while IFS='=' read -r name value; do
    [ -n "${!name:-}" ] || export "$name=$value"
  done < "$file"
}

# Fills ${VAR} placeholders of a template; only our own names, so Connect's ${env:...}
# syntax (and anything else with a dollar) passes through untouched.
render() {
  envsubst '$STATE_DIR $KAFKA_PORT $KAFKA_CONTROLLER_PORT $KAFKA_SASL_PORT $KAFKA_MTLS_PORT $CONNECT_PORT $DB_PORT $DB_SERVER_ID $KAFKA_BOOTSTRAP_SERVERS $KAFKA_REPLICATION_FACTOR $KAFKA_MIN_ISR $KAFKA_NODE_ID $KAFKA_NODE_DIR $KAFKA_NODE_LISTENERS $KAFKA_NODE_ADVERTISED $KAFKA_QUORUM' < "$ROOT/$1" > "$2"
}

# java_kafka HEAP MAIN ARGS...: the broker, Connect and Kafka's tools share one classpath.
java_kafka() {
  local java=java heap=$1
  shift
  [ -n "${JAVA_HOME:-}" ] && java="$JAVA_HOME/bin/java"
  # shellcheck disable=SC2086
  exec "$java" $heap -XX:+UseG1GC -Dlog4j2.configurationFile="$ROOT/stack/conf/${KAFKA_LOG4J:-log4j2.properties}" \
    -cp "$DIST/kafka/libs/*" "$@"
}
kafka_tool() { ( KAFKA_LOG4J=log4j2-tools.properties java_kafka "-Xmx256m -XX:TieredStopAtLevel=1" "$@" ); }

db_root() {
  mariadb --defaults-file="$STATE_DIR/mariadb/my.cnf" --socket="$STATE_DIR/mariadb/mariadb.sock" -uroot "$@"
}

# Starts a command detached, records its pid and what it runs, for `stop` to check later.
spawn() {
  local service=$1 log=$2
  shift 2
  step "$service: starting (log: $log)"
  # functions such as java_kafka end in `exec`, so $! is the pid of the real process
  (
    trap '' HUP
    exec >>"$log" 2>&1 < /dev/null
    if [ "$(type -t "$1")" = function ]; then "$@"; else exec "$@"; fi
  ) &
  local pid=$!
  echo "$pid" > "$PIDS/$service.pid"
  # The process's start time (clock ticks since boot, constant across exec): `running` checks
  # it, so a pid the kernel reused for another process is never taken for ours.
  proc_field "$pid" 22 > "$PIDS/$service.start" 2>/dev/null || rm -f "$PIDS/$service.start"
  disown "$pid" 2>/dev/null || true
}

# proc_field PID N: field N of /proc/PID/stat (man 5 proc: 3 = state, 22 = starttime). The
# command name (field 2) is in parentheses and may hold spaces, so count from after it.
proc_field() {
  local stat rest n=$2
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  # shellcheck disable=SC2086
  set -- $rest
  [ $# -ge $((n - 2)) ] || return 1
  shift $((n - 3))
  echo "$1"
}

# pid_alive PID: the process exists and is not a zombie or dead (kill -0 answers for both:
# a kill -9'd process stays a zombie until its parent reaps it).
pid_alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(proc_field "$1" 3) || return 0 # no /proc: trust kill -0
  case $state in Z | X | x) return 1 ;; esac
  return 0
}

# running SERVICE: its recorded pid is alive (not a zombie) and is still the process we started.
running() {
  local file="$PIDS/$1.pid" pid start
  [ -f "$file" ] || return 1
  pid=$(cat "$file")
  [ -n "$pid" ] && pid_alive "$pid" || return 1
  if [ -f "$PIDS/$1.start" ] && start=$(proc_field "$pid" 22); then
    [ "$start" = "$(cat "$PIDS/$1.start")" ] || return 1
  fi
  return 0
}

stop() {
  local service=$1 file="$PIDS/$1.pid" pid waited=0
  if ! running "$service"; then
    rm -f "$file" "$PIDS/$service.start"
    return 0
  fi
  pid=$(cat "$file")
  step "$service: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  while pid_alive "$pid"; do
    sleep 0.2
    waited=$((waited + 1))
    if [ $waited -ge 150 ]; then
      step "$service: still running after 30 s, sending KILL to pid $pid"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$file" "$PIDS/$service.start"
}

# wait_for SERVICE SECONDS CHECK... — polls CHECK until it succeeds, the deadline passes,
# or the process dies (then its log tail explains why).
wait_for() {
  local service=$1 deadline=$((SECONDS + $2)) t0=$SECONDS last=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    running "$service" || { tail -n 30 "$LOGS/$service.log" >&2; fail "$service exited during start"; }
    [ $SECONDS -lt $deadline ] || { tail -n 30 "$LOGS/$service.log" >&2; fail "$service not healthy after $((SECONDS - t0)) s"; }
    if [ $((SECONDS - last)) -ge 10 ]; then step "$service: waiting ($((SECONDS - t0)) s)"; last=$SECONDS; fi
    sleep 0.5
  done
  ok "$service healthy in $((SECONDS - t0)) s"
}

http_ok() { curl -fsS -o /dev/null --max-time 3 "$1"; }

# props_value VALUE: VALUE as a Java .properties value (backslashes doubled, a leading space
# kept), for the files that carry secrets to Java tools instead of their command lines.
props_value() {
  local v=${1//\\/\\\\}
  [[ $v != [[:space:]]* ]] || v="\\$v"
  printf '%s' "$v"
}

# connect_ok URL: Connect's REST API answers 2xx to its operator. The Authorization header goes
# to curl on stdin (-H @-), so the password is on no command line.
connect_ok() {
  printf 'Authorization: Basic %s\n' "$(printf '%s:%s' "$CONNECT_REST_USER" "$CONNECT_REST_PASSWORD" | base64 -w0)" \
    | curl -fsS -o /dev/null --max-time 3 -H @- "$1"
}

kafka_ready() {
  kafka_tool org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" >/dev/null 2>&1
}

# Installs what a fresh machine of this kind lacks (as root: Debian packages); otherwise
# says exactly what to install.
prerequisites() {
  local missing=() cmd
  for cmd in mariadbd:mariadb-server mariadb:mariadb-client envsubst:gettext-base curl:curl jq:jq mvn:maven java:openjdk-17-jdk-headless prometheus:prometheus promtool:prometheus openssl:openssl keytool:openjdk-17-jdk-headless; do
    command -v "${cmd%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${cmd%%:*}" ] || missing+=("${cmd#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ]; then
    step "installing Debian packages: ${missing[*]}"
    # another apt run (a second stack starting, unattended upgrades) holds dpkg's lock: wait for it
    apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" \
      || fail "apt-get install ${missing[*]} failed"
    # the Debian package starts the system server on 3306; we leave it as it is and never use it
    # (prometheus likewise starts a system server on 9090 under systemd: ours runs on PROMETHEUS_PORT)
  else
    fail "missing: ${missing[*]}. Install them with: sudo apt-get install ${missing[*]}"
  fi
}

load_settings
