"""``mlmclm bench``: training-step throughput against ``transformers``, per attention mechanism, the data
pipeline, sweeps of sequence length and model size, and CPU threads beside a competing job.

shapes (what runs) → twins (who runs it) → timing (interleaved, synchronised) → flops (MFU) → records
(tables, JSON); run.py wires them; docs/performance.md explains the method.
"""
