"""``auth0-backfill import``: archived Auth0 logs (files, directories, standard input, object
stores) into the data source the Log Stream fills, as the same rows ``run`` sends.

Reading is split from sending. First every source is read (``sources``, ``compression``,
``layouts``, ``shapes``) and each log is staged on disk, once, in the order it will be sent
(``staging``, driven by ``reading``): so an archive that is bad, holds several tenants or overlaps
what the data source holds is refused before any row leaves. Then the staged rows are sent in
that order, with the checkpoint after each acknowledged batch (``send``, ``checkpoint``).
``job`` orders the whole; ``report`` and ``progress`` say what happened.
"""
