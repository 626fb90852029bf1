"""Distributed operations (clause 4.3): the forwarding client the query planner and the distributed writes use."""

from broker.federation.forwarder import Forwarder, SourceError, SourceReply, via_holds

__all__ = ["Forwarder", "SourceError", "SourceReply", "via_holds"]
