-- Control Plane schema. Idempotent: every statement may run again on a migrated database.

CREATE TABLE IF NOT EXISTS intents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key text        NOT NULL UNIQUE,
    ring            text        NOT NULL,
    platform        text        NOT NULL,
    payload         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    state           text        NOT NULL DEFAULT 'Draft'
                    CHECK (state IN ('Draft', 'Approved', 'Published')),
    correlation_id  text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS evidence_packs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    intent_id       bigint      NOT NULL REFERENCES intents (id),
    bucket          text        NOT NULL,
    object_key      text        NOT NULL,
    version_id      text,
    sha256          text        NOT NULL,
    state           text        NOT NULL CHECK (state = 'Committed'),
    correlation_id  text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (intent_id, sha256)
);
-- The alternate-region copy (matrix row "Evidence store | Object storage outage"):
-- replica_validated = the copy was read back with the recorded sha256 (ValidatedCopyExists).
ALTER TABLE evidence_packs ADD COLUMN IF NOT EXISTS replica_bucket text;
ALTER TABLE evidence_packs ADD COLUMN IF NOT EXISTS replica_version_id text;
ALTER TABLE evidence_packs ADD COLUMN IF NOT EXISTS replica_validated boolean NOT NULL DEFAULT false;

-- One approval per intent: a replayed approve is answered from here, never recorded twice.
CREATE TABLE IF NOT EXISTS approvals (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    intent_id       bigint      NOT NULL UNIQUE REFERENCES intents (id),
    approver        text        NOT NULL,
    correlation_id  text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS publishes (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    intent_id       bigint      NOT NULL UNIQUE REFERENCES intents (id),
    instance        text        NOT NULL,
    correlation_id  text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- The append-only, hash-chained event store.
CREATE TABLE IF NOT EXISTS events (
    seq             bigserial   PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    type            text        NOT NULL,
    intent_id       bigint,
    correlation_id  text        NOT NULL,
    payload         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    prev_hash       text        NOT NULL,
    hash            text        NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS events_type_idx ON events (type);

-- The chain's head, one row: writers lock it FOR UPDATE, so concurrent instances append
-- one after the other and every prev_hash is the hash of the event committed before it.
CREATE TABLE IF NOT EXISTS event_chain_head (
    id              smallint    PRIMARY KEY CHECK (id = 1),
    last_seq        bigint      NOT NULL,
    last_hash       text        NOT NULL
);
INSERT INTO event_chain_head (id, last_seq, last_hash)
VALUES (1, 0, repeat('0', 64))
ON CONFLICT (id) DO NOTHING;

CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'the event store is hash-chained; append a correcting event instead';
END;
$$;

CREATE OR REPLACE TRIGGER events_refuse_update_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

CREATE OR REPLACE TRIGGER events_refuse_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

-- ---- Connectors and their platforms (matrix rows 4-6) -----------------------------------

-- The Control Plane's clock: the database's clock plus an offset that only a lab started
-- with `serve --allow-clock-control` can move (so "after 15 minutes" runs in seconds).
CREATE TABLE IF NOT EXISTS cp_clock (
    id              smallint    PRIMARY KEY CHECK (id = 1),
    offset_s        double precision NOT NULL DEFAULT 0
);
INSERT INTO cp_clock (id, offset_s) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE OR REPLACE FUNCTION cp_now() RETURNS timestamptz
LANGUAGE sql VOLATILE AS $$
    SELECT clock_timestamp() + make_interval(secs => offset_s) FROM cp_clock WHERE id = 1
$$;

-- Outbox of published and promoted intents and of ring rollbacks: written in the publish (or
-- promote, or rollback) transaction, sent to the platform's SQS queue after the commit (and again
-- by any instance's dispatcher while still pending). The connector's idempotency key is
-- idempotency_key (first ring), idempotency_key@ring (a promotion) or
-- rollback:<ring>:<rollback_id>:<platform> (a ring rollback); each row is addressed by it.
-- kind 'deploy': one row per (intent, ring): the publish to its first ring, then one per ring
-- promotion. kind 'rollback': one row per platform and rollback; intent_id is the platform's last
-- intent deployed to that ring, NULL when there was none (sent as intent_id "ring:<ring>").
CREATE TABLE IF NOT EXISTS dispatches (
    intent_id       bigint      REFERENCES intents (id),
    platform        text        NOT NULL,
    ring            text        NOT NULL,
    idempotency_key text        NOT NULL,
    correlation_id  text        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'enqueued', 'applied', 'dead_lettered')),
    created_at      timestamptz NOT NULL,
    enqueued_at     timestamptz,
    applied_at      timestamptz,
    kind            text        NOT NULL DEFAULT 'deploy' CHECK (kind IN ('deploy', 'rollback')),
    rollback_id     text
);
-- A table migrated before ring rollbacks: (intent_id, ring) was its primary key.
ALTER TABLE dispatches ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'deploy'
    CHECK (kind IN ('deploy', 'rollback'));
ALTER TABLE dispatches ADD COLUMN IF NOT EXISTS rollback_id text;
ALTER TABLE dispatches DROP CONSTRAINT IF EXISTS dispatches_pkey;
ALTER TABLE dispatches ALTER COLUMN intent_id DROP NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS dispatches_deploy_idx ON dispatches (intent_id, ring) WHERE kind = 'deploy';
CREATE UNIQUE INDEX IF NOT EXISTS dispatches_rollback_key_idx ON dispatches (idempotency_key) WHERE kind = 'rollback';
CREATE INDEX IF NOT EXISTS dispatches_key_idx ON dispatches (idempotency_key);
CREATE INDEX IF NOT EXISTS dispatches_ring_idx ON dispatches (ring, platform, created_at) WHERE kind = 'deploy';
CREATE INDEX IF NOT EXISTS dispatches_open_idx ON dispatches (state) WHERE state IN ('pending', 'enqueued');

-- Ring rollbacks (POST /rings/{ring}/rollback): one row per rollback; request_key is the
-- optional Idempotency-Key header of the request (a replay with it answers this rollback).
CREATE TABLE IF NOT EXISTS ring_rollbacks (
    rollback_id     text        PRIMARY KEY,
    ring            text        NOT NULL,
    approver        text        NOT NULL,
    request_key     text        UNIQUE,
    correlation_id  text        NOT NULL,
    created_at      timestamptz NOT NULL
);

-- What the connectors observed of their platform (one row per platform call or health probe).
CREATE TABLE IF NOT EXISTS platform_observations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    platform        text        NOT NULL,
    at              timestamptz NOT NULL,          -- Control Plane clock
    outcome         text        NOT NULL,
    op              text        NOT NULL,
    status          integer,
    intent_id       bigint,
    attempt         integer,
    wait_s          double precision,
    retry_after_s   double precision,
    correlation_id  text
);
CREATE INDEX IF NOT EXISTS platform_observations_idx ON platform_observations (platform, at);

-- Each platform's health as the Control Plane records it (controlplane.platformstate).
CREATE TABLE IF NOT EXISTS platform_status (
    platform                  text PRIMARY KEY,
    health                    text NOT NULL DEFAULT 'Healthy' CHECK (health IN ('Healthy', 'Degraded', 'Down')),
    last_outcome              text,
    degraded_since            timestamptz,
    cab_pause_since           timestamptz,
    manual_import_offered_at  timestamptz
);

-- ---- The API tier (matrix row 1) --------------------------------------------------------

-- One row per `serve` instance, refreshed by its heartbeat (every 0.5 s, real clock, never
-- waiting for the synchronous standby). /health counts the rows seen in the last 3 s: the
-- api_tier part of ServiceHealth (controlplane.health).
CREATE TABLE IF NOT EXISTS api_instances (
    instance        text        PRIMARY KEY,
    last_seen       timestamptz NOT NULL
);

-- A replay (an idempotent request answered "already recorded") writes one row here, so that its
-- COMMIT waits for the synchronous standby: it is acknowledged only once what it found is
-- durable (controlplane.db.durable_replay). One row per database session.
CREATE TABLE IF NOT EXISTS durability_barrier (
    backend_pid     integer     PRIMARY KEY,
    at              timestamptz NOT NULL
);
