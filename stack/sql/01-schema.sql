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

-- A table the CDC user must NOT be able to read (least privilege is tested).
CREATE TABLE IF NOT EXISTS loyalty.member_payment_methods (
  member_id  BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  token      VARCHAR(64) NOT NULL
);
