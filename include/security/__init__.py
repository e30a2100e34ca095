"""Least privilege: the reader role for user SQL, the platform's own role, and their provisioning."""
