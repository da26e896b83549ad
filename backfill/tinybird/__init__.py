"""Tinybird: the Events API sink, the Query API, datafiles, regions."""
