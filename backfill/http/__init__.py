"""What both services' clients share: the one HTTP client, its whole-request deadline and the one
way a request is sent (client), and the one retry policy (retry)."""
