"""auth0-backfill: copy an Auth0 tenant's historical logs into Tinybird as Log Stream envelopes."""

__version__ = "0.2.0"
