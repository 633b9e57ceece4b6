-- Issued certificates. The serial is the primary key: no serial can be recorded twice.
CREATE TABLE certificates (
    serial            TEXT    PRIMARY KEY,      -- uppercase hex, as openssl prints it
    ca_id             TEXT    NOT NULL,         -- the issuing CA: hex SHA-256 of its certificate, first 16 digits
    subject           TEXT    NOT NULL,
    sans              TEXT    NOT NULL,         -- JSON array of "type:value"
    not_before        INTEGER NOT NULL,         -- unix seconds
    not_after         INTEGER NOT NULL,
    issued_at         INTEGER NOT NULL,
    transaction_id    TEXT    NOT NULL,
    message_type      TEXT    NOT NULL,
    signer_sha256     BLOB    NOT NULL,         -- fingerprint of the request's signer certificate
    csr_sha256        BLOB    NOT NULL,
    requester         TEXT    NOT NULL,         -- client address
    template          TEXT    NOT NULL,
    challenge_id      TEXT,                     -- the one-time challenge consumed, by id
    renews_serial     TEXT,
    status            TEXT    NOT NULL DEFAULT 'valid',
    revoked_at        INTEGER,
    revocation_reason INTEGER,
    der               BLOB    NOT NULL
);
CREATE INDEX certificates_transaction ON certificates (transaction_id);
CREATE INDEX certificates_subject ON certificates (subject);
CREATE INDEX certificates_revoked ON certificates (ca_id, status);

-- Requests waiting for an administrator (templates with manual approval).
CREATE TABLE pending_requests (
    id             TEXT    PRIMARY KEY,
    transaction_id TEXT    NOT NULL,
    signer_sha256  BLOB    NOT NULL,
    csr_sha256     BLOB    NOT NULL,
    csr            BLOB    NOT NULL,
    signer_der     BLOB    NOT NULL,
    subject        TEXT    NOT NULL,
    sans           TEXT    NOT NULL,
    requester      TEXT    NOT NULL,
    template       TEXT    NOT NULL,
    message_type   TEXT    NOT NULL,
    renews_serial  TEXT,
    challenge_id   TEXT,                        -- the one-time challenge it used, by id
    status         TEXT    NOT NULL,            -- pending, approved, rejected, issued
    created_at     INTEGER NOT NULL,
    decided_at     INTEGER,
    decided_by     TEXT,
    serial         TEXT
);
CREATE INDEX pending_transaction ON pending_requests (transaction_id);

-- Signed CRLs, per CA, numbered; the newest is served.
CREATE TABLE crls (
    ca_id       TEXT    NOT NULL,
    number      INTEGER NOT NULL,
    this_update INTEGER NOT NULL,
    next_update INTEGER NOT NULL,
    der         BLOB    NOT NULL,
    PRIMARY KEY (ca_id, number)
);

-- One-time challenge passwords, stored as HMAC-SHA256 under a server secret. A row
-- stays after use, expiry or revocation (until purged) so that its state can be asked.
CREATE TABLE challenges (
    id            TEXT    PRIMARY KEY,
    hash          BLOB    NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    created_by    TEXT    NOT NULL,
    bound_subject TEXT,                     -- RFC 4514 subject the request must carry
    bound_sans    TEXT,                     -- JSON array of "type:value" the request must carry
    template      TEXT,
    used_at       INTEGER,
    used_serial   TEXT,
    revoked_at    INTEGER
);
CREATE INDEX challenges_expiry ON challenges (expires_at);

-- Users of the admin page and the API. Passwords are argon2id PHC strings.
CREATE TABLE users (
    name          TEXT    PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    permissions   TEXT    NOT NULL,             -- comma-separated: enroll, admin
    created_at    INTEGER NOT NULL
);

-- Small named values; secrets in it are encrypted (the single master password).
CREATE TABLE settings (
    name       TEXT    PRIMARY KEY,
    value      BLOB    NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Every PKIOperation: what was asked, what was decided and why. Secrets never: the
-- challenge by id only.
CREATE TABLE audit (
    id             TEXT    PRIMARY KEY,
    at             INTEGER NOT NULL,
    requester      TEXT    NOT NULL,
    via            TEXT    NOT NULL,
    transaction_id TEXT,
    message_type   TEXT,
    subject        TEXT,
    template       TEXT,
    outcome        TEXT    NOT NULL,            -- issued, pending, failure, unreadable
    fail_info      TEXT,
    reason         TEXT,
    serial         TEXT,
    challenge_id   TEXT,
    renews_serial  TEXT
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_transaction ON audit (transaction_id);
CREATE INDEX audit_serial ON audit (serial);
