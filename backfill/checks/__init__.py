"""The operator's checks, beside run: before (preflight: `check`), during (status) and after
(verify, against the run's ledger; holes, against Auth0 itself)."""
