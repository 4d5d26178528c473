"""Identity: how people prove who they are and keep their accounts (password reset, email
verification, password and email changes, sessions, lockout). The facade is services.py."""
