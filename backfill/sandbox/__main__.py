"""`python -m backfill.sandbox ...`: the same command as `auth0-backfill sandbox`."""

from backfill.cli.sandbox import sandbox

if __name__ == "__main__":
    sandbox(prog_name="python -m backfill.sandbox")
