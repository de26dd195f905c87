"""The worker's state, one job a module (the counting itself is in ``pipeline.streaming``):

- ``manager``: the counting partitions held, opened on assignment, closed on revocation;
- ``partition_store``: one RocksDB per partition and the decoded states in use;
- ``stored_state``: a subject's bytes (its engine state and recent event ids);
- ``table_layout``: the keys (subjects, expiries, marker, fence, metadata);
- ``store_options``: RocksDB sized for many partitions;
- ``changelog``: changed keys and markers written, acknowledged;
- ``checkpoint``: changes, markers, RocksDB, offsets, in that order, while counting goes on;
- ``recovery``: a partition restored from its changelog on assignment.
"""
