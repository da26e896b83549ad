"""Configuration: every setting declared once (settings), how values are parsed and checked
(parse), the [[tenants]] tables and --shard (tenants), secrets from the environment (secrets)."""
