# Shared by scripts/kafka.sh and scripts/cluster.sh: how the Kafka processes
# they start log. Source it; do not run it.

# write_broker_log4j2 FILE LOG_DIR NAME WRITER: the broker's log in
# LOG_DIR/server.log, rolled by size, with the chatty request and state-change
# loggers at WARN.
write_broker_log4j2() {
  local file="$1" logs="$2" name="$3" writer="$4"
  cat >"$file" <<CONFIG
# Written by $writer: broker log in $logs, rolled by size.
name=$name
appender.file.type=RollingFile
appender.file.name=file
appender.file.fileName=$logs/server.log
appender.file.filePattern=$logs/server.log.%i
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
appender.file.policies.type=Policies
appender.file.policies.size.type=SizeBasedTriggeringPolicy
appender.file.policies.size.size=50MB
appender.file.strategy.type=DefaultRolloverStrategy
appender.file.strategy.max=3
rootLogger.level=INFO
rootLogger.appenderRef.file.ref=file
logger.request.name=kafka.request.logger
logger.request.level=WARN
logger.statechange.name=state.change.logger
logger.statechange.level=WARN
CONFIG
}

# tools_log4j2 FILE NAME: prints FILE after writing it once (atomically, as
# parallel runs may race): Kafka's command-line tools log warnings only, to
# stderr, so that their stdout stays parseable.
tools_log4j2() {
  local file="$1" name="$2"
  if [[ ! -f "$file" ]]; then
    cat >"$file.$$" <<CONFIG
name=$name
appender.err.type=Console
appender.err.name=err
appender.err.target=SYSTEM_ERR
appender.err.layout.type=PatternLayout
appender.err.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=WARN
rootLogger.appenderRef.err.ref=err
CONFIG
    mv "$file.$$" "$file"
  fi
  echo "$file"
}
