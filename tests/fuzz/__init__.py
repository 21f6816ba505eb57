"""A seeded fuzzer for cnnkit's file readers.

Every case is a file derived from a real seed file (made in the run, or found in ../shared) by
one mutation, or a crafted file (hostile pickles, lying headers, decompression bombs). Cases
run in a child process under a memory limit and a per-case timeout; the parent counts, per
reader, clean results (a normal return or an allowed exception) and failures: crashes, hangs,
wrong exception types and code executed by a crafted file. See ``python -m tests.fuzz -h``.
"""
