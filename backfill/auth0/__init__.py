"""Auth0: Management API tokens, the logs source, log_ids and event types."""
