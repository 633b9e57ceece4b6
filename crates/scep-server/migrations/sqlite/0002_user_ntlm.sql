-- Users enabled for NTLM keep their NT hash, sealed (AES-256-GCM) under a key derived
-- from the CA key; NULL for users who authenticate with Basic only.
ALTER TABLE users ADD COLUMN nt_secret BLOB;
