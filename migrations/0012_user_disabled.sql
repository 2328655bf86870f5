-- Admins can disable an account (issue 15): a disabled user cannot log in or refresh.
-- Unix seconds it was disabled; NULL while the account is active. Portable SQL, like 0001.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
