"""What both services' clients share: the one HTTP client with whole-request deadlines
(transport, deadline) and the one retry policy (retry)."""
