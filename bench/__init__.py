"""Benchmarks (run as scripts; a package only so pytest does not put bench/ on sys.path,
where bench/sfu.py would shadow the sfu app)."""
