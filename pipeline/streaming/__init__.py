"""The Faust streaming application (aiokafka transport, RocksDB tables through rocksdict)."""
