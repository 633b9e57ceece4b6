-- Console sessions carry their user's epoch under the session MAC; logging out or
-- changing the password moves it on, which ends every session of that user at once,
-- on every instance.
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;
