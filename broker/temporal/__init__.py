"""The temporal side of the broker (clauses 4.5.7-4.5.9, 4.5.19, 4.11, 5.6.11-5.6.16, 5.7.3-5.7.4): the history
recorded from every write, the temporal query language, and the aggregations. Pure functions; the operations that
use them are in broker.core.temporal, the storage in each Store backend."""
