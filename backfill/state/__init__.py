"""The checkpoint: what it holds (model), kept on disk versioned, atomic and locked (file), and
the check that a file's JSON fits those types (schema)."""
