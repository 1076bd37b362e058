-- Login: a scrypt hash (NULL: the account cannot log in, e.g. created without a password) and a role.
ALTER TABLE users ADD COLUMN password_hash text;
ALTER TABLE users ADD COLUMN role text NOT NULL DEFAULT 'CUSTOMER' CHECK (role IN ('CUSTOMER', 'ADMIN'));
