"""The records: an Auth0 log turned into the stream's envelope (envelope), personal data dropped
(pii), envelopes cut into batches Tinybird takes (batches). Pure: no I/O."""
