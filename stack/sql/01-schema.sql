-- The source table (members.md) and the audit table the sink connector upserts into.
-- Portable between MySQL 8.x and MariaDB: the native stack and docker-compose both run this file.
CREATE DATABASE IF NOT EXISTS loyalty;

CREATE TABLE IF NOT EXISTS loyalty.members (
  id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  org_id         VARCHAR(16)  NOT NULL,
  org_member_id  VARCHAR(64)  NOT NULL,
  email          VARCHAR(254) NOT NULL,
  first_name     VARCHAR(100) NULL,
  last_name      VARCHAR(100) NULL,
  locale         VARCHAR(16)  NULL,
  created_at     TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at     TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  UNIQUE KEY uq_org_member (org_id, org_member_id)
);

-- One row per Welcome accepted by SFMC; written only by the welcome-audit sink connector.
-- The emailer also reads it: our own durable "already sent" record beyond SFMC's dedup window.
CREATE TABLE IF NOT EXISTS loyalty.new_members_sent_to_salesforce (
  org_id               VARCHAR(16)  NOT NULL,
  org_member_id        VARCHAR(64)  NOT NULL,
  member_id            BIGINT       NULL,
  subscriber_key       VARCHAR(254) NOT NULL,
  message_key          VARCHAR(100) NOT NULL,
  request_id           VARCHAR(64)  NULL,
  definition_key       VARCHAR(100) NOT NULL,
  source_committed_at  TIMESTAMP(3) NULL,
  sent_at              TIMESTAMP(3) NOT NULL,
  -- When the sink first wrote the row (the database's clock; an upsert leaves it): the last hop's time.
  audited_at           TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (org_id, org_member_id)
);

-- Members that existed when the pipeline was switched on (`make seed-preexisting`): never
-- welcomed, even if their row is deleted and inserted again (REPLACE INTO, restore). The
-- emailer only reads it; the seed (an operator's command) writes it.
CREATE TABLE IF NOT EXISTS loyalty.welcome_preexisting_members (
  org_id         VARCHAR(16)  NOT NULL,
  org_member_id  VARCHAR(64)  NOT NULL,
  member_id      BIGINT       NULL,
  recorded_at    TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (org_id, org_member_id)
);

-- The send-rate breaker's shared state (consumers/emailer/breaker.ts): one ceiling per
-- organization across every emailer replica and restart. One row per member it counted, with
-- its verdict (1 welcomed, 0 held) and when (the database's clock); rows older than 7 days are
-- deleted by the emailer. The emailer's user may read, insert and delete here, nothing else.
CREATE TABLE IF NOT EXISTS loyalty.welcome_send_admissions (
  org_id         VARCHAR(16)  NOT NULL,
  org_member_id  VARCHAR(64)  NOT NULL,
  admitted       TINYINT(1)   NOT NULL,
  counted_at     TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  PRIMARY KEY (org_id, org_member_id),
  KEY ix_window (org_id, counted_at)
);

-- One row per organization, locked (SELECT ... FOR UPDATE by an upsert) while a replica counts
-- a chunk's members, so replicas admit one after another and never both under the ceiling.
CREATE TABLE IF NOT EXISTS loyalty.welcome_send_ceiling (
  org_id  VARCHAR(16) NOT NULL PRIMARY KEY
);

-- Members forgotten on an erasure request (`make forget`, docs/member-data.md): a keyed hash
-- (HMAC-SHA256 with WELCOME_FORGET_KEY) of `org_id:org_member_id`, never the member itself.
-- The emailer reads it in the same query as its already-sent guard and sends nothing to a
-- member listed here; the replay and release tools drop such members' records. Written only
-- by the forget tool's user; never deleted (a forgotten member stays forgotten).
CREATE TABLE IF NOT EXISTS loyalty.welcome_forgotten (
  member_hash   CHAR(64)     NOT NULL PRIMARY KEY,
  forgotten_at  TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
);

-- A table the CDC user must NOT be able to read (least privilege is tested).
CREATE TABLE IF NOT EXISTS loyalty.member_payment_methods (
  member_id  BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  token      VARCHAR(64) NOT NULL
);

-- The audit row keeps the FIRST send. The sink upserts (INSERT ... ON DUPLICATE KEY UPDATE),
-- and a later WelcomeSent of the same member (SFMC answered 109110 to a resend, a replay)
-- would replace the original request id and send time; on an update this trigger keeps the
-- row as it was, so request_id/sent_at always name the send that really went out.
DROP TRIGGER IF EXISTS loyalty.welcome_audit_keeps_first_send;
CREATE TRIGGER loyalty.welcome_audit_keeps_first_send BEFORE UPDATE ON loyalty.new_members_sent_to_salesforce
FOR EACH ROW SET NEW.member_id = OLD.member_id, NEW.subscriber_key = OLD.subscriber_key, NEW.message_key = OLD.message_key,
  NEW.request_id = OLD.request_id, NEW.definition_key = OLD.definition_key, NEW.source_committed_at = OLD.source_committed_at,
  NEW.sent_at = OLD.sent_at;

-- What SFMC did with each accepted Welcome (delivery-status stage → welcome.delivery.status →
-- welcome-delivery-status sink). A table of its own, so the audit table's schema and its
-- first-send rule stay untouched; marketing reads both through the welcome_audit view.
CREATE TABLE IF NOT EXISTS loyalty.welcome_delivery_status (
  org_id          VARCHAR(16)  NOT NULL,
  org_member_id   VARCHAR(64)  NOT NULL,
  message_key     VARCHAR(100) NOT NULL,
  status          VARCHAR(16)  NOT NULL,
  status_code     INT          NULL,
  status_message  VARCHAR(255) NULL,
  event_at        TIMESTAMP(3) NULL,
  sent_at         TIMESTAMP(3) NOT NULL,
  checks          INT          NOT NULL,
  checked_at      TIMESTAMP(3) NOT NULL,
  next_check_at   TIMESTAMP(3) NULL,
  PRIMARY KEY (org_id, org_member_id),
  KEY ix_due (status, next_check_at)
);

-- A final status (EmailSent, EmailNotSent) is final: a later EmailQueued/unknown (a replayed
-- WelcomeSent checked again after SFMC forgot it) does not replace it. One statement, no
-- DELIMITER, so both the native stack and the MySQL image's init run it as is.
DROP TRIGGER IF EXISTS loyalty.welcome_delivery_status_final;
CREATE TRIGGER loyalty.welcome_delivery_status_final BEFORE UPDATE ON loyalty.welcome_delivery_status
FOR EACH ROW SET
  NEW.status_code = IF(OLD.status IN ('EmailSent', 'EmailNotSent'), OLD.status_code, NEW.status_code),
  NEW.status_message = IF(OLD.status IN ('EmailSent', 'EmailNotSent'), OLD.status_message, NEW.status_message),
  NEW.event_at = IF(OLD.status IN ('EmailSent', 'EmailNotSent'), OLD.event_at, NEW.event_at),
  NEW.checks = IF(OLD.status IN ('EmailSent', 'EmailNotSent'), OLD.checks, NEW.checks),
  NEW.checked_at = IF(OLD.status IN ('EmailSent', 'EmailNotSent'), OLD.checked_at, NEW.checked_at),
  NEW.next_check_at = IF(OLD.status IN ('EmailSent', 'EmailNotSent'), OLD.next_check_at, NEW.next_check_at),
  NEW.sent_at = OLD.sent_at,
  NEW.status = IF(OLD.status IN ('EmailSent', 'EmailNotSent'), OLD.status, NEW.status);

-- Marketing's view: one row per Welcome with its delivery status (NULL = not checked yet).
CREATE OR REPLACE VIEW loyalty.welcome_audit AS
SELECT a.org_id, a.org_member_id, a.member_id, a.subscriber_key, a.message_key, a.request_id, a.definition_key,
       a.source_committed_at, a.sent_at, d.status AS delivery_status, d.status_code AS delivery_status_code,
       d.status_message AS delivery_status_message, d.event_at AS delivery_event_at, d.checked_at AS delivery_checked_at
FROM loyalty.new_members_sent_to_salesforce a
LEFT JOIN loyalty.welcome_delivery_status d ON d.org_id = a.org_id AND d.org_member_id = a.org_member_id;
