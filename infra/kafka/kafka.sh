#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller) without Docker.
# The broker's jars come from Maven Central via ./pom.xml; see README.md.
#
# Usage: infra/kafka/kafka.sh install|start|stop|status|restart|logs
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$SCRIPT_DIR/pom.xml"
TEMPLATE="$SCRIPT_DIR/server.properties"
LOG4J_CONFIG="$SCRIPT_DIR/log4j2.properties"

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}
info() { echo "kafka.sh: $*" >&2; }

KAFKA_VERSION="$(sed -n 's:.*<kafka\.version>\(.*\)</kafka\.version>.*:\1:p' "$POM" | head -n 1)"
[[ -n "$KAFKA_VERSION" ]] || die "cannot read <kafka.version> from $POM"

KAFKA_CACHE_DIR="${KAFKA_CACHE_DIR:-${HOME}/.cache/touchstream/kafka-${KAFKA_VERSION}}"
LIBS_DIR="$KAFKA_CACHE_DIR/libs"
STAMP_FILE="$KAFKA_CACHE_DIR/pom.sha256"

KAFKA_PORT="${KAFKA_PORT:-9092}"
[[ "$KAFKA_PORT" =~ ^[0-9]+$ ]] || die "KAFKA_PORT must be a number, got '$KAFKA_PORT'"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_HOST=127.0.0.1
KAFKA_NODE_ID="${KAFKA_NODE_ID:-1}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
KAFKA_OPTS="${KAFKA_OPTS:-}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
MVN="${MVN:-mvn}"

if [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]]; then
  JAVA="${JAVA:-${JAVA_HOME}/bin/java}"
else
  JAVA="${JAVA:-java}"
fi

data_dir="${KAFKA_DATA_DIR:-.touchstream/kafka}"
case "$data_dir" in
  /*) ;;
  *) data_dir="$PWD/$data_dir" ;;
esac
DATA_DIR="$data_dir"
PID_FILE="$DATA_DIR/kafka.pid"
PORT_FILE="$DATA_DIR/kafka.port"
LOG_FILE="$DATA_DIR/kafka.log"
CONFIG_FILE="$DATA_DIR/server.properties"
KRAFT_DIR="$DATA_DIR/kraft-logs"

for n in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_START_TIMEOUT" "$KAFKA_STOP_TIMEOUT" "$KAFKA_NODE_ID"; do
  [[ "$n" =~ ^[0-9]+$ ]] || die "expected a number, got '$n'"
done
[[ "$KAFKA_PORT" != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"

# ---------------------------------------------------------------- helpers

pom_hash() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$POM" | cut -d' ' -f1
  else
    shasum -a 256 "$POM" | cut -d' ' -f1
  fi
}

installed() {
  [[ -f "$STAMP_FILE" && -d "$LIBS_DIR" ]] || return 1
  [[ "$(cat "$STAMP_FILE")" == "$(pom_hash)" ]] || return 1
  compgen -G "$LIBS_DIR/kafka_2.13-${KAFKA_VERSION}.jar" >/dev/null
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/$KAFKA_HOST/$1") 2>/dev/null
}

# True if $1 is a live, non-zombie process.
alive() {
  local pid="$1" state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/stat" ]]; then
    state="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)"
    [[ "$state" != Z ]] || return 1
  fi
  return 0
}

# True if $1 is a live Kafka broker process using our config file.
is_our_broker() {
  local pid="$1" cmdline
  alive "$pid" || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
    [[ "$cmdline" == *kafka.Kafka*"$CONFIG_FILE"* ]] || return 1
  fi
  return 0
}

read_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(tr -d '[:space:]' <"$PID_FILE")"
  [[ -n "$pid" ]] || return 1
  echo "$pid"
}

running_port() {
  if [[ -f "$PORT_FILE" ]]; then tr -d '[:space:]' <"$PORT_FILE"; else echo "$KAFKA_PORT"; fi
}

check_java() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (set JAVA_HOME or JAVA); Java 17+ is required"
  local major
  major="$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p' | head -n 1)"
  major="${major#1.}"
  [[ "$major" =~ ^[0-9]+$ && "$major" -ge 17 ]] || die "Kafka ${KAFKA_VERSION} needs Java 17+, found '${major:-unknown}' ($JAVA)"
}

classpath() { echo "$LIBS_DIR/*"; }

render_config() {
  local esc_dir
  esc_dir="$(printf '%s' "$KRAFT_DIR" | sed -e 's/[\\|&]/\\&/g')"
  sed -e "s|@PORT@|$KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
    -e "s|@NODE_ID@|$KAFKA_NODE_ID|g" \
    -e "s|@LOG_DIR@|$esc_dir|g" \
    "$TEMPLATE" >"$CONFIG_FILE.tmp"
  mv "$CONFIG_FILE.tmp" "$CONFIG_FILE"
}

random_cluster_id() {
  # A Kafka Uuid: 16 random bytes, base64url without padding (22 chars).
  # Like Kafka's Uuid.randomUuid(), avoid a leading '-' (looks like an option).
  local id="-"
  while [[ "$id" == -* ]]; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  done
  echo "$id"
}

# ---------------------------------------------------------------- commands

cmd_install() {
  if installed; then
    info "Kafka ${KAFKA_VERSION} already installed in $LIBS_DIR"
    return 0
  fi
  command -v "$MVN" >/dev/null 2>&1 || die "maven ('$MVN') not found; it is needed once to fetch Kafka ${KAFKA_VERSION}"
  info "fetching Kafka ${KAFKA_VERSION} from Maven Central into $LIBS_DIR ..."
  mkdir -p "$KAFKA_CACHE_DIR"
  local tmp
  tmp="$(mktemp -d "$KAFKA_CACHE_DIR/libs.tmp.XXXXXX")"
  local mvn_log="$KAFKA_CACHE_DIR/mvn.log"
  if ! "$MVN" -q -B -f "$POM" dependency:copy-dependencies -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
    cat "$mvn_log" >&2
    rm -rf "$tmp"
    die "maven failed to fetch Kafka ${KAFKA_VERSION} (see output above)"
  fi
  compgen -G "$tmp/kafka_2.13-${KAFKA_VERSION}.jar" >/dev/null || {
    rm -rf "$tmp"
    die "maven did not produce kafka_2.13-${KAFKA_VERSION}.jar"
  }
  rm -rf "$LIBS_DIR"
  mv "$tmp" "$LIBS_DIR"
  pom_hash >"$STAMP_FILE"
  info "installed Kafka ${KAFKA_VERSION} ($(find "$LIBS_DIR" -name '*.jar' | wc -l) jars)"
}

cmd_status() {
  local pid port
  if pid="$(read_pid)" && is_our_broker "$pid"; then
    port="$(running_port)"
    if port_open "$port"; then
      echo "running pid $pid on $KAFKA_HOST:$port"
      return 0
    fi
    echo "not running (pid $pid is alive but $KAFKA_HOST:$port does not answer)"
    return 1
  fi
  echo "not running"
  return 1
}

format_storage() {
  if [[ -f "$KRAFT_DIR/meta.properties" ]]; then
    return 0
  fi
  local cluster_id="${KAFKA_CLUSTER_ID:-$(random_cluster_id)}"
  info "formatting $KRAFT_DIR (cluster id $cluster_id)"
  "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$LOG4J_CONFIG" -cp "$(classpath)" \
    kafka.tools.StorageTool format --standalone --ignore-formatted \
    "--cluster-id=$cluster_id" --config "$CONFIG_FILE" >>"$LOG_FILE" 2>&1 ||
    {
      tail -n 30 "$LOG_FILE" >&2
      die "formatting storage failed"
    }
}

cmd_start() {
  local pid port
  mkdir -p "$DATA_DIR"
  if pid="$(read_pid)" && is_our_broker "$pid"; then
    port="$(running_port)"
    if port_open "$port"; then
      info "already running pid $pid on $KAFKA_HOST:$port"
      echo "$KAFKA_HOST:$port"
      return 0
    fi
    die "pid $pid (from $PID_FILE) is alive but $KAFKA_HOST:$port does not answer; run '$0 stop' first"
  fi
  rm -f "$PID_FILE"

  if port_open "$KAFKA_PORT"; then
    die "$KAFKA_HOST:$KAFKA_PORT is already in use by another process (set KAFKA_PORT)"
  fi
  if port_open "$KAFKA_CONTROLLER_PORT"; then
    die "$KAFKA_HOST:$KAFKA_CONTROLLER_PORT is already in use by another process (set KAFKA_CONTROLLER_PORT)"
  fi

  check_java
  cmd_install

  # A standalone (dynamic) KRaft quorum records the controller endpoint at
  # format time. A single self-voting node still starts on another port, but
  # tools that read the voter set would see the old one, so say so.
  if [[ -f "$KRAFT_DIR/meta.properties" && -f "$DATA_DIR/kafka.controller-port" ]]; then
    local formatted_cport
    formatted_cport="$(tr -d '[:space:]' <"$DATA_DIR/kafka.controller-port")"
    [[ "$formatted_cport" == "$KAFKA_CONTROLLER_PORT" ]] ||
      info "note: $DATA_DIR was formatted with controller port $formatted_cport, now using $KAFKA_CONTROLLER_PORT"
  fi

  if [[ -f "$LOG_FILE" ]]; then
    mv -f "$LOG_FILE" "$LOG_FILE.1"
  fi
  : >"$LOG_FILE"
  render_config
  if [[ ! -f "$KRAFT_DIR/meta.properties" ]]; then
    format_storage
    echo "$KAFKA_CONTROLLER_PORT" >"$DATA_DIR/kafka.controller-port"
  fi

  local -a heap_opts extra_opts
  read -r -a heap_opts <<<"$KAFKA_HEAP_OPTS"
  read -r -a extra_opts <<<"$KAFKA_OPTS"
  local -a cmd=(
    "$JAVA" "${heap_opts[@]}"
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$LOG4J_CONFIG" "-Dkafka.logs.dir=$DATA_DIR"
    "${extra_opts[@]}"
    -cp "$(classpath)" kafka.Kafka "$CONFIG_FILE"
  )

  info "starting Kafka ${KAFKA_VERSION} on $KAFKA_HOST:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT, data $DATA_DIR)"
  # The child writes its own pid (bash -c execs java, so $$ is the JVM's pid);
  # setsid detaches it from our session so terminal signals do not reach it.
  local launcher=()
  command -v setsid >/dev/null 2>&1 && launcher=(setsid)
  # shellcheck disable=SC2016 # $$ and "$@" are expanded by the inner shell
  nohup "${launcher[@]}" bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" "${cmd[@]}" \
    </dev/null >>"$LOG_FILE" 2>&1 &
  local launcher_pid=$!
  echo "$KAFKA_PORT" >"$PORT_FILE"

  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  pid=""
  while ((SECONDS < deadline)); do
    if [[ -z "$pid" ]]; then
      pid="$(read_pid || true)"
    fi
    if { [[ -n "$pid" ]] && ! alive "$pid"; } ||
      { [[ -z "$pid" ]] && ! alive "$launcher_pid"; }; then
      echo "---- last lines of $LOG_FILE ----" >&2
      tail -n 40 "$LOG_FILE" >&2
      rm -f "$PID_FILE"
      die "Kafka exited during startup"
    fi
    if [[ -n "$pid" ]] && grep -q 'Kafka Server started' "$LOG_FILE" && port_open "$KAFKA_PORT"; then
      info "Kafka is ready (pid $pid, log $LOG_FILE)"
      echo "$KAFKA_HOST:$KAFKA_PORT"
      return 0
    fi
    sleep 0.2
  done
  echo "---- last lines of $LOG_FILE ----" >&2
  tail -n 40 "$LOG_FILE" >&2
  # Do not leave a half-started broker behind. The launcher is our own child
  # and becomes the JVM (exec), so it is the fallback if no pid was read yet.
  [[ -n "$pid" ]] || pid="$(read_pid || true)"
  [[ -n "$pid" ]] || pid="$launcher_pid"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$launcher_pid" 2>/dev/null || true
  rm -f "$PID_FILE"
  die "Kafka did not become ready within ${KAFKA_START_TIMEOUT}s"
}

cmd_stop() {
  local pid
  if ! pid="$(read_pid)"; then
    info "not running"
    rm -f "$PID_FILE"
    return 0
  fi
  if ! is_our_broker "$pid"; then
    info "not running (stale pid file, pid $pid)"
    rm -f "$PID_FILE"
    return 0
  fi
  info "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while is_our_broker "$pid" && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if is_our_broker "$pid"; then
    info "pid $pid still alive after ${KAFKA_STOP_TIMEOUT}s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while is_our_broker "$pid" && ((SECONDS < deadline)); do
      sleep 0.2
    done
    ! is_our_broker "$pid" || die "pid $pid did not exit"
  fi
  rm -f "$PID_FILE"
  info "stopped"
}

usage() {
  cat >&2 <<EOF
usage: $0 install|start|stop|status|restart|logs

  install  fetch Kafka ${KAFKA_VERSION} jars from Maven Central into \$KAFKA_CACHE_DIR (once)
  start    format (first time) and start a single-node KRaft broker; prints host:port
  stop     stop the broker started from \$KAFKA_DATA_DIR
  status   exit 0 and print "running pid N on 127.0.0.1:PORT", or exit 1
  restart  stop, then start
  logs     print the broker log path

env: KAFKA_PORT (9092) KAFKA_CONTROLLER_PORT (KAFKA_PORT+1) KAFKA_DATA_DIR (.touchstream/kafka)
     KAFKA_CACHE_DIR (~/.cache/touchstream/kafka-${KAFKA_VERSION}) KAFKA_HEAP_OPTS (-Xmx512m -Xms256m)
     KAFKA_OPTS KAFKA_START_TIMEOUT (90) KAFKA_STOP_TIMEOUT (30) KAFKA_CLUSTER_ID JAVA_HOME MVN
EOF
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart)
    cmd_stop
    cmd_start
    ;;
  logs) echo "$LOG_FILE" ;;
  -h | --help | help)
    usage
    ;;
  *)
    usage
    exit 2
    ;;
esac
