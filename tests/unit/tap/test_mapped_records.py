"""MappedRecords: the SDK's stream maps over the fast path's RECORD lines."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading

from singer_sdk.mapper import PluginMapper

from tap_dap import mapping
from tap_dap.schema import StreamSchema

SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "meta": {"type": "object"},
    "_sdc_deleted_at": {"type": ["null", "string"]}}}  # fmt: skip


def test_threads_mapping_one_stream_at_once_hash_their_own_records() -> None:
    """A compiled map's exact-path rows are mapped from the prefetch threads, which may encode
    several objects of one stream at once; the SDK's evaluator is not thread-safe, so each
    record must still get the hash of its own value."""
    mapper = PluginMapper(plugin_config={"stream_maps": {"s": {"name": "md5(name)"}}},
                          logger=logging.getLogger("test"))  # fmt: skip
    sent = StreamSchema("s", SCHEMA, ["id"], 1)
    mapping.register(mapper, "s", sent)
    # Two instances over the same StreamMap objects, as after a SCHEMA is sent again.
    instances = [mapping.MappedRecords("s", mapper.stream_maps["s"], sent) for _ in range(2)]
    wrong: list[tuple[int, int]] = []

    def work(thread: int) -> None:
        records = instances[thread % 2]
        for i in range(1500):
            name = f"n{thread}-{i}"
            line = json.dumps({"type": "RECORD", "stream": "s", "record": {"id": i, "name": name}})
            mapped = json.loads(records.map_chunk([line.encode()])[0])["record"]
            if mapped["name"] != hashlib.md5(name.encode()).hexdigest():
                wrong.append((thread, i))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []
