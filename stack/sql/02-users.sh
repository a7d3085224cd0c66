#!/usr/bin/env bash
# Creates the least-privilege users. Passwords come from the environment, never from a file
# in git. Runs natively (stack/bin/stack) and as a MySQL image init script (docker-compose),
# where $DB_ROOT_CLIENT is unset and the image's root client is used.
# DB_REQUIRE_SSL=1 (the native stack, whose MariaDB serves TLS): the users Kafka Connect logs in
# as (CDC and sink) are refused without TLS; the emailer's and delivery-status' users are not
# (tests log in as them over TCP without TLS), though the emailer itself uses TLS (DB_SSL_CA_FILE).
#
# Secrets stay secrets here: every name and password reaches the server as a string literal
# escaped for the sql_mode this session sets itself (a server default with
# NO_BACKSLASH_ESCAPES would otherwise change what a backslash means), through the client's
# stdin; the root password (compose) reaches the client in an option file on a pipe, not on its
# command line. test/stack/db-users.test.ts runs this script with passwords holding ' \ " $.
set -euo pipefail
: "${CDC_DB_USER:=debezium}" "${SINK_DB_USER:=welcome_audit}" "${EMAILER_DB_USER:=welcome_emailer}"
: "${CDC_DB_PASSWORD:?CDC_DB_PASSWORD is required}" "${SINK_DB_PASSWORD:?SINK_DB_PASSWORD is required}" "${EMAILER_DB_PASSWORD:?EMAILER_DB_PASSWORD is required}"
: "${DELIVERY_DB_USER:=welcome_delivery}" "${DELIVERY_DB_PASSWORD:?DELIVERY_DB_PASSWORD is required}"
: "${FORGET_DB_USER:=welcome_forget}" "${FORGET_DB_PASSWORD:?FORGET_DB_PASSWORD is required}"
case ${DB_REQUIRE_SSL:-0} in 1) require=SSL ;; 0) require=NONE ;; *) echo "DB_REQUIRE_SSL must be 0 or 1" >&2; exit 1 ;; esac

# A string literal under the sql_mode set below (no NO_BACKSLASH_ESCAPES): backslash and quote
# escaped with a backslash, so neither can end the literal. Bash strings hold no NUL.
sql_str() {
  local v=${1//\\/\\\\}
  printf "'%s'" "${v//\'/\\\'}"
}
# An option-file value: double-quoted, backslash and double quote escaped.
opt_str() {
  local v=${1//\\/\\\\}
  printf '"%s"' "${v//\"/\\\"}"
}

root_client() {
  if [ -n "${DB_ROOT_CLIENT:-}" ]; then
    # shellcheck disable=SC2086 # a command with its options (stack/bin/stack: socket login, no password)
    $DB_ROOT_CLIENT
  else
    # the MySQL image's init phase: root with MYSQL_ROOT_PASSWORD, read from a pipe (mode 600)
    mysql --defaults-extra-file=<(printf '[client]\npassword=%s\n' "$(opt_str "${MYSQL_ROOT_PASSWORD:-}")") -uroot
  fi
}

# user NAME: the account 'NAME'@'%' as SQL
user() { printf "%s@'%%'" "$(sql_str "$1")"; }
cdc=$(user "$CDC_DB_USER") sink=$(user "$SINK_DB_USER") emailer=$(user "$EMAILER_DB_USER") delivery=$(user "$DELIVERY_DB_USER") forget=$(user "$FORGET_DB_USER")

root_client <<SQL
-- explicit: the escaping above assumes backslash escapes are on, whatever the server's default
SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION';
CREATE USER IF NOT EXISTS ${cdc} IDENTIFIED BY $(sql_str "$CDC_DB_PASSWORD");
ALTER USER ${cdc} IDENTIFIED BY $(sql_str "$CDC_DB_PASSWORD");
-- Debezium: binlog reading rights, plus SELECT on the captured table only. No RELOAD: the
-- snapshot reads no data (snapshot.mode=no_data) and takes no lock (snapshot.locking.mode=none);
-- revoked from users an older version of this script created.
GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ${cdc};
REVOKE RELOAD ON *.* FROM ${cdc};
GRANT SELECT ON loyalty.members TO ${cdc};
ALTER USER ${cdc} REQUIRE ${require};

CREATE USER IF NOT EXISTS ${sink} IDENTIFIED BY $(sql_str "$SINK_DB_PASSWORD");
ALTER USER ${sink} IDENTIFIED BY $(sql_str "$SINK_DB_PASSWORD");
GRANT SELECT, INSERT, UPDATE ON loyalty.new_members_sent_to_salesforce TO ${sink};
ALTER USER ${sink} REQUIRE ${require};

CREATE USER IF NOT EXISTS ${emailer} IDENTIFIED BY $(sql_str "$EMAILER_DB_PASSWORD");
ALTER USER ${emailer} IDENTIFIED BY $(sql_str "$EMAILER_DB_PASSWORD");
GRANT SELECT ON loyalty.new_members_sent_to_salesforce TO ${emailer};
GRANT SELECT ON loyalty.welcome_preexisting_members TO ${emailer};
-- Forgotten members (make forget): read in the same query as the audit table, never written.
GRANT SELECT ON loyalty.welcome_forgotten TO ${emailer};
-- The send-rate breaker's shared counts: insert and prune its own rows, lock its org rows.
GRANT SELECT, INSERT, DELETE ON loyalty.welcome_send_admissions TO ${emailer};
GRANT SELECT, INSERT, UPDATE ON loyalty.welcome_send_ceiling TO ${emailer};

-- Delivery status: the sink writes the status table; the delivery-status stage only reads it
-- (what is still queued and due); marketing's welcome_audit view joins both tables.
GRANT SELECT, INSERT, UPDATE ON loyalty.welcome_delivery_status TO ${sink};
CREATE USER IF NOT EXISTS ${delivery} IDENTIFIED BY $(sql_str "$DELIVERY_DB_PASSWORD");
ALTER USER ${delivery} IDENTIFIED BY $(sql_str "$DELIVERY_DB_PASSWORD");
GRANT SELECT ON loyalty.welcome_delivery_status TO ${delivery};

-- The forget tool (make forget) and the replay/release tools' check: records the member's hash,
-- deletes its rows from the tables we own (DELETE ... WHERE needs SELECT on the columns it
-- compares). Nothing on members (the company's table), nothing to update anywhere.
CREATE USER IF NOT EXISTS ${forget} IDENTIFIED BY $(sql_str "$FORGET_DB_PASSWORD");
ALTER USER ${forget} IDENTIFIED BY $(sql_str "$FORGET_DB_PASSWORD");
GRANT SELECT, INSERT ON loyalty.welcome_forgotten TO ${forget};
GRANT SELECT, DELETE ON loyalty.new_members_sent_to_salesforce TO ${forget};
GRANT SELECT, DELETE ON loyalty.welcome_delivery_status TO ${forget};
GRANT SELECT, DELETE ON loyalty.welcome_preexisting_members TO ${forget};
GRANT SELECT, DELETE ON loyalty.welcome_send_admissions TO ${forget};
ALTER USER ${forget} REQUIRE ${require};
FLUSH PRIVILEGES;
SQL
