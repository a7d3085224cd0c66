#!/usr/bin/env bash
# Creates the least-privilege users. Passwords come from the environment, never from a file
# in git. Runs natively (stack/bin/stack) and as a MySQL image init script (docker-compose),
# where $DB_ROOT_CLIENT is unset and the image's root client is used.
# DB_REQUIRE_SSL=1 (the native stack, whose MariaDB serves TLS): the users Kafka Connect logs in
# as (CDC and sink) are refused without TLS; the emailer's and delivery-status' users are not
# (tests log in as them over TCP without TLS), though the emailer itself uses TLS (DB_SSL_CA_FILE).
set -euo pipefail
: "${CDC_DB_USER:=debezium}" "${SINK_DB_USER:=welcome_audit}" "${EMAILER_DB_USER:=welcome_emailer}"
: "${CDC_DB_PASSWORD:?CDC_DB_PASSWORD is required}" "${SINK_DB_PASSWORD:?SINK_DB_PASSWORD is required}" "${EMAILER_DB_PASSWORD:?EMAILER_DB_PASSWORD is required}"
: "${DELIVERY_DB_USER:=welcome_delivery}" "${DELIVERY_DB_PASSWORD:?DELIVERY_DB_PASSWORD is required}"
client=${DB_ROOT_CLIENT:-mysql -uroot -p${MYSQL_ROOT_PASSWORD:-}}
case ${DB_REQUIRE_SSL:-0} in 1) require=SSL ;; 0) require=NONE ;; *) echo "DB_REQUIRE_SSL must be 0 or 1" >&2; exit 1 ;; esac
sql_str() { printf "'%s'" "${1//\'/\'\'}"; }
$client <<SQL
CREATE USER IF NOT EXISTS '${CDC_DB_USER}'@'%' IDENTIFIED BY $(sql_str "$CDC_DB_PASSWORD");
ALTER USER '${CDC_DB_USER}'@'%' IDENTIFIED BY $(sql_str "$CDC_DB_PASSWORD");
-- Debezium: binlog reading rights, plus SELECT on the captured table only.
GRANT RELOAD, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '${CDC_DB_USER}'@'%';
GRANT SELECT ON loyalty.members TO '${CDC_DB_USER}'@'%';
ALTER USER '${CDC_DB_USER}'@'%' REQUIRE ${require};

CREATE USER IF NOT EXISTS '${SINK_DB_USER}'@'%' IDENTIFIED BY $(sql_str "$SINK_DB_PASSWORD");
ALTER USER '${SINK_DB_USER}'@'%' IDENTIFIED BY $(sql_str "$SINK_DB_PASSWORD");
GRANT SELECT, INSERT, UPDATE ON loyalty.new_members_sent_to_salesforce TO '${SINK_DB_USER}'@'%';
ALTER USER '${SINK_DB_USER}'@'%' REQUIRE ${require};

CREATE USER IF NOT EXISTS '${EMAILER_DB_USER}'@'%' IDENTIFIED BY $(sql_str "$EMAILER_DB_PASSWORD");
ALTER USER '${EMAILER_DB_USER}'@'%' IDENTIFIED BY $(sql_str "$EMAILER_DB_PASSWORD");
GRANT SELECT ON loyalty.new_members_sent_to_salesforce TO '${EMAILER_DB_USER}'@'%';
GRANT SELECT ON loyalty.welcome_preexisting_members TO '${EMAILER_DB_USER}'@'%';
-- The send-rate breaker's shared counts: insert and prune its own rows, lock its org rows.
GRANT SELECT, INSERT, DELETE ON loyalty.welcome_send_admissions TO '${EMAILER_DB_USER}'@'%';
GRANT SELECT, INSERT, UPDATE ON loyalty.welcome_send_ceiling TO '${EMAILER_DB_USER}'@'%';

-- Delivery status: the sink writes the status table; the delivery-status stage only reads it
-- (what is still queued and due); marketing's welcome_audit view joins both tables.
GRANT SELECT, INSERT, UPDATE ON loyalty.welcome_delivery_status TO '${SINK_DB_USER}'@'%';
CREATE USER IF NOT EXISTS '${DELIVERY_DB_USER}'@'%' IDENTIFIED BY $(sql_str "$DELIVERY_DB_PASSWORD");
ALTER USER '${DELIVERY_DB_USER}'@'%' IDENTIFIED BY $(sql_str "$DELIVERY_DB_PASSWORD");
GRANT SELECT ON loyalty.welcome_delivery_status TO '${DELIVERY_DB_USER}'@'%';
FLUSH PRIVILEGES;
SQL
