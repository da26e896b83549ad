"""One run: where it starts, its ranges, its threads and commit order, and what it reports."""
