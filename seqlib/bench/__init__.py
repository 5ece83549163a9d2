"""Benchmarks (GPU): ``python -m seqlib.bench.scan`` times the RG-LRU scan backends."""
