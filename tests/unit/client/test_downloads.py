"""Object URLs, downloads to files, streaming lines/records, URL refresh and corrupt data."""

from __future__ import annotations

import gzip
import io
import threading
import zlib

import pytest
import requests

from tap_dap.client import (
    DownloadError,
    DownloadInterruptedError,
    NotFoundError,
    Object,
    Resource,
    TruncatedObjectError,
    UnexpectedResponseError,
    is_transient,
)
from tap_dap.client.streams import gunzip_chunks, split_lines
from tests.unit.client.conftest import (
    BASE,
    STORAGE,
    BrokenBody,
    calls_to,
    gz,
    make_client,
    signed_url,
)

URLS = f"{BASE}/dap/object/url"
OBJ = Object("J1/part-00000.jsonl.gz")
LINES = [b'{"key":{"id":%d},"value":{"name":"n%d"}}' % (i, i) for i in range(200)]
PAYLOAD = b"\n".join(LINES) + b"\n"


def url_map(*names: str, signature: str = "SIGNATURE-abc123") -> dict[str, object]:
    return {"urls": {f"J1/{n}": {"url": signed_url(n, signature)} for n in names}}


def resolve_obj(api, name: str = "part-00000.jsonl.gz") -> str:
    api.post(URLS, json=url_map(name))
    return signed_url(name)


class TestResources:
    def test_chunked_url_resolution(self, api, credentials) -> None:
        ids = [f"J1/p{i}.gz" for i in range(5)]

        def answer(request, context):
            return {
                "urls": {o["id"]: {"url": f"{STORAGE}/{o['id'][3:]}?sig=1"} for o in request.json()}
            }

        api.post(URLS, json=answer)
        with make_client(credentials, url_batch_size=2) as session:
            resources = session.get_resources([Object(i) for i in ids] + [Object(ids[0])])
        assert [c.json() for c in calls_to(api, URLS)] == [
            [{"id": ids[0]}, {"id": ids[1]}],
            [{"id": ids[2]}, {"id": ids[3]}],
            [{"id": ids[4]}],
        ]
        assert list(resources) == ids
        assert resources[ids[3]].url.url == f"{STORAGE}/p3.gz?sig=1"
        assert resources[ids[3]].object_id == ids[3]

    def test_missing_url_is_named(self, api, session) -> None:
        api.post(URLS, json={"urls": {}})
        with pytest.raises(UnexpectedResponseError, match="no URL returned for J1/x"):
            session.get_resources([Object("J1/x")])

    def test_expired_object_is_not_found(self, api, session) -> None:
        api.post(
            URLS,
            status_code=404,
            json={
                "error": {
                    "type": "NotFoundError",
                    "uuid": "n",
                    "message": "gone",
                    "id": "J1/x",
                    "kind": "object",
                }
            },
        )
        with pytest.raises(NotFoundError, match="object 'J1/x' not found"):
            session.get_resources([Object("J1/x")])


class TestDownloadToFiles:
    def test_download_object_as_served_without_authorization(self, api, session, tmp_path) -> None:
        url = resolve_obj(api)
        body = gz(PAYLOAD)
        api.get(url, content=body)
        path = session.download_object(OBJ, str(tmp_path))
        assert path == str(tmp_path / "part-00000.jsonl.gz")
        assert (tmp_path / "part-00000.jsonl.gz").read_bytes() == body
        (download,) = calls_to(api, url.split("?")[0])
        assert "Authorization" not in download.headers
        assert download.headers["User-Agent"].startswith("tap-dap/")

    def test_download_decompressed(self, api, session, tmp_path) -> None:
        url = resolve_obj(api)
        api.get(url, content=gz(PAYLOAD))
        path = session.download_object(OBJ, str(tmp_path), decompress=True)
        assert path.endswith("part-00000.jsonl")
        assert (tmp_path / "part-00000.jsonl").read_bytes() == PAYLOAD

    def test_parallel_downloads_use_several_workers(self, api, credentials, tmp_path) -> None:
        names = [f"part-{i:05d}.tsv.gz" for i in range(6)]
        api.post(URLS, json=url_map(*names))
        barrier = threading.Barrier(3, timeout=5)
        threads: set[str] = set()

        class MeetingBody(io.RawIOBase):
            """Reading the first three bodies only proceeds when three threads read at once.

            (requests-mock serialises sending, but bodies are read outside its lock.)"""

            def __init__(self, index: int) -> None:
                self._data, self._index, self._waited = gz(b"row %d\n" % index), index, False

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
                threads.add(threading.current_thread().name)
                if self._index < 3 and not self._waited:
                    self._waited = True
                    barrier.wait()
                size = min(len(buffer), len(self._data))
                buffer[:size], self._data = self._data[:size], self._data[size:]
                return size

        for i, name in enumerate(names):
            api.get(signed_url(name), body=MeetingBody(i))
        with make_client(credentials, download_workers=3) as session:
            paths = session.download_objects(
                [Object(f"J1/{n}") for n in names], str(tmp_path), decompress=True
            )
        assert paths == [str(tmp_path / n.removesuffix(".gz")) for n in names]
        assert [(tmp_path / n.removesuffix(".gz")).read_bytes() for n in names] == [
            b"row %d\n" % i for i in range(6)
        ]
        assert len(threads) == 3

    def test_one_failure_fails_the_batch_and_leaves_no_partial_file(
        self, api, credentials, tmp_path
    ) -> None:
        names = ["a.gz", "b.gz"]
        api.post(URLS, json=url_map(*names))
        api.get(signed_url("a.gz"), content=gz(b"fine\n"))
        api.get(signed_url("b.gz"), status_code=404, text="NoSuchKey")
        with (
            make_client(credentials, download_workers=2) as session,
            pytest.raises(DownloadError) as info,
        ):
            session.download_objects([Object("J1/a.gz"), Object("J1/b.gz")], str(tmp_path))
        assert str(info.value) == (
            "object J1/b.gz: object storage answered HTTP 404 "
            "(object not found; job outputs expire after 24 hours)"
        )
        assert not list(tmp_path.glob("*.part"))

    @pytest.mark.parametrize("name", ["..%2F..%2Fevil.sh", "..", "%2E%2E", "a%5Cb"])
    def test_path_traversal_is_refused(self, api, session, tmp_path, name) -> None:
        api.post(URLS, json={"urls": {"J1/x": {"url": f"{STORAGE}/{name}?sig=1"}}})
        api.get(f"{STORAGE}/{name}", content=b"#!/bin/sh\n")
        target = tmp_path / "out"
        with pytest.raises(DownloadError, match=r"object J1/x: refusing unsafe file name"):
            session.download_object(Object("J1/x"), str(target))
        assert not (tmp_path / "evil.sh").exists()
        assert calls_to(api, f"{STORAGE}/{name}") == []

    def test_duplicate_basenames_are_refused(self, session, tmp_path) -> None:
        resources = [Resource(f"https://s.test/{d}/part.gz?sig", object_id=d) for d in ("a", "b")]
        with pytest.raises(
            DownloadError, match="object b and object a would both be saved as part.gz"
        ):
            session.download_resources(resources, str(tmp_path))

    def test_reset_mid_body_restarts_the_file(self, api, session, tmp_path, clock) -> None:
        url = resolve_obj(api)
        body = gz(PAYLOAD)
        api.get(url, [{"body": BrokenBody(body[:100])}, {"content": body}])
        session.download_object(OBJ, str(tmp_path))
        assert (tmp_path / "part-00000.jsonl.gz").read_bytes() == body
        assert len(clock.sleeps) == 1

    def test_storage_5xx_is_retried(self, api, session, tmp_path, clock) -> None:
        url = resolve_obj(api)
        api.get(url, [{"status_code": 503, "text": "SlowDown"}, {"content": b"plain\n"}])
        session.download_object(OBJ, str(tmp_path))
        assert (tmp_path / "part-00000.jsonl.gz").read_bytes() == b"plain\n"

    def test_expired_url_is_resolved_again(self, api, session, tmp_path) -> None:
        old, new = signed_url("p.gz", "OLD"), signed_url("p.gz", "NEW")
        api.post(
            URLS,
            [
                {"json": url_map("p.gz", signature="OLD")},
                {"json": url_map("p.gz", signature="NEW")},
            ],
        )
        # requests-mock matches the query string too, so each URL gets its own answer.
        api.get(old, status_code=403, text="<Error><Code>AccessDenied</Code>Request has expired")
        api.get(new, content=gz(b"fresh\n"))
        path = session.download_object(Object("J1/p.gz"), str(tmp_path), decompress=True)
        assert (tmp_path / "p").read_bytes() == b"fresh\n"
        assert path == str(tmp_path / "p")
        assert len(calls_to(api, URLS)) == 2

    def test_persistent_403_gives_up_after_refreshes(self, api, session, tmp_path) -> None:
        url = resolve_obj(api, "p.gz")
        api.get(url, status_code=403, text="AccessDenied")
        with pytest.raises(DownloadError) as info:
            session.download_object(Object("J1/p.gz"), str(tmp_path))
        assert str(info.value) == (
            "object J1/p.gz: object storage answered HTTP 403 (pre-signed URL expired or forbidden)"
        )
        assert len(calls_to(api, URLS)) == 3  # first resolution + max_url_refreshes (2)

    def test_truncated_gzip_is_retried_then_names_the_object(
        self, api, session, tmp_path, clock
    ) -> None:
        url = resolve_obj(api)
        api.get(url, content=gz(PAYLOAD)[:-30])
        with pytest.raises(TruncatedObjectError) as info:
            session.download_object(OBJ, str(tmp_path), decompress=True)
        assert str(info.value) == (
            f"object {OBJ.id}: gzip data is truncated (the stream ended inside a compressed "
            f"member) (gave up after 4 attempts in {info.value.elapsed:.1f} s)"
        )
        assert info.value.object_id == OBJ.id
        assert len(calls_to(api, URLS)) == 4  # every new attempt asked for a fresh URL
        assert not list(tmp_path.iterdir())

    def test_truncated_gzip_then_whole_copy_is_saved(self, api, session, tmp_path, clock) -> None:
        url = resolve_obj(api)
        api.get(url, [{"content": gz(PAYLOAD)[:-30]}, {"content": gz(PAYLOAD)}])
        path = session.download_object(OBJ, str(tmp_path), decompress=True)
        assert (tmp_path / "part-00000.jsonl").read_bytes() == PAYLOAD
        assert path == str(tmp_path / "part-00000.jsonl")
        assert len(calls_to(api, URLS)) == 2


class TestStreaming:
    def test_lines_from_multichunk_multimember_gzip(self, api, session) -> None:
        url = resolve_obj(api)
        # Two gzip members, CRLF endings and blank lines; the 64-byte chunk size splits lines.
        body = gz(b"\n".join(LINES[:120]) + b"\r\n\n") + gz(b"\n".join(LINES[120:]))
        api.get(url, content=body)
        assert list(session.stream_object_lines(OBJ)) == LINES

    def test_line_blocks_hold_whole_lines_of_the_object(self, api, session) -> None:
        url = resolve_obj(api)
        body = gz(b"\n".join(LINES[:120]) + b"\n") + gz(b"\n".join(LINES[120:]) + b"\n")
        api.get(url, content=body)
        blocks = list(session.stream_object_line_blocks(OBJ))
        assert len(blocks) > 1 and all(block.endswith(b"\n") for block in blocks)
        assert b"".join(blocks).split(b"\n")[:-1] == LINES

    def test_line_blocks_broken_after_a_block_name_blocks_not_lines(self, api, session) -> None:
        url = resolve_obj(api)
        plain = b"\n".join(LINES)
        api.get(url, [{"body": BrokenBody(plain[:700])}, {"content": plain}])
        seen = []
        with pytest.raises(DownloadInterruptedError) as info:
            for block in session.stream_object_line_blocks(OBJ):
                seen.append(block)
        assert seen and plain.startswith(b"".join(seen))
        assert info.value.lines_delivered == 0  # a block reader restarts by bytes
        assert f"download broke after {len(seen)} blocks" in str(info.value)

    def test_records(self, api, session) -> None:
        url = resolve_obj(api)
        api.get(url, content=gz(PAYLOAD))
        records = list(session.stream_object_records(OBJ))
        assert len(records) == 200
        assert records[7] == {"key": {"id": 7}, "value": {"name": "n7"}}

    def test_malformed_json_line_names_object_and_line(self, api, session) -> None:
        url = resolve_obj(api)
        api.get(url, content=gz(b'{"a":1}\n{"a":2}\n{"a":\n'))
        records = session.stream_object_records(OBJ)
        assert next(records) == {"a": 1}
        with pytest.raises(DownloadError, match=rf"object {OBJ.id}: line 3 is not valid JSON"):
            list(records)

    def test_plain_body_passes_through(self, api, session) -> None:
        url = resolve_obj(api)
        api.get(url, content=b"a\tb\nc\td")
        assert list(session.stream_object_lines(OBJ)) == [b"a\tb", b"c\td"]

    def test_content_encoding_gzip_is_not_decoded_twice(self, api, session) -> None:
        url = resolve_obj(api)
        api.get(url, content=gz(PAYLOAD), headers={"Content-Encoding": "gzip"})
        assert list(session.stream_object_lines(OBJ)) == LINES

    def test_reset_before_first_line_is_retried(self, api, session, clock) -> None:
        url = resolve_obj(api)
        body = gz(PAYLOAD)
        api.get(url, [{"body": BrokenBody(body[:10])}, {"content": body}])
        assert list(session.stream_object_lines(OBJ)) == LINES
        assert len(clock.sleeps) == 1

    def test_truncated_gzip_before_first_line_is_read_again_from_a_fresh_url(
        self, api, session, clock
    ) -> None:
        url = resolve_obj(api)
        body = gz(PAYLOAD)
        api.get(url, [{"content": body[:20]}, {"content": body}])
        assert list(session.stream_object_lines(OBJ)) == LINES
        assert len(calls_to(api, URLS)) == 2
        assert len(clock.sleeps) == 1

    def test_empty_object_is_read_again_then_fails_naming_it(self, api, session, clock) -> None:
        url = resolve_obj(api)
        api.get(url, [{"content": b""}, {"content": gz(PAYLOAD)}])
        assert list(session.stream_object_lines(OBJ)) == LINES  # the second copy was whole
        api.get(url, content=b"", headers={"Content-Length": "0"})
        with pytest.raises(TruncatedObjectError) as info:
            list(session.stream_object_lines(OBJ))
        assert str(info.value).startswith(
            f"object {OBJ.id}: the object is empty (0 bytes; a DAP object is a gzip stream, "
            "never empty) (gave up after 4 attempts")

    @pytest.mark.parametrize("decompress", [True, False])
    def test_empty_object_is_never_saved(self, api, session, tmp_path, clock,
                                         decompress: bool) -> None:
        url = resolve_obj(api)
        api.get(url, content=b"")
        with pytest.raises(TruncatedObjectError, match="the object is empty"):
            session.download_object(OBJ, str(tmp_path), decompress=decompress)
        assert not list(tmp_path.iterdir())

    def test_truncated_gzip_after_lines_raises_for_a_restart(self, api, session) -> None:
        url = resolve_obj(api)
        api.get(url, content=gz(PAYLOAD)[: len(gz(PAYLOAD)) // 2])
        seen = []
        with pytest.raises(DownloadInterruptedError) as info:
            for line in session.stream_object_lines(OBJ):
                seen.append(line)
        assert seen == LINES[: len(seen)] and seen  # complete lines only, in order
        assert is_transient(info.value)
        assert info.value.lines_delivered == len(seen)
        assert "gzip data is truncated" in str(info.value)

    def test_reset_after_lines_were_yielded_raises(self, api, session) -> None:
        url = resolve_obj(api)
        plain = b"\n".join(LINES)
        api.get(url, [{"body": BrokenBody(plain[:700])}, {"content": plain}])
        seen = []
        with pytest.raises(DownloadInterruptedError) as info:
            for line in session.stream_object_lines(OBJ):
                seen.append(line)
        assert seen == LINES[: len(seen)] and seen
        # retryable by the caller, who knows how many lines it already has
        assert is_transient(info.value)
        assert (info.value.lines_delivered, info.value.object_id) == (len(seen), OBJ.id)
        assert str(info.value).startswith(
            f"object {OBJ.id}: download broke after {len(seen)} lines (object {OBJ.id}: "
            "connection broke after "
        )
        assert str(info.value).endswith(
            " bytes (Connection broken)); the object must be read again from the start"
        )
        assert len(calls_to(api, url.split("?")[0])) == 1

    def test_corrupt_gzip(self, api, session) -> None:
        url = resolve_obj(api)
        body = bytearray(gz(PAYLOAD))
        body[40:60] = b"\xff" * 20
        api.get(url, content=bytes(body))
        with pytest.raises(DownloadError, match=rf"object {OBJ.id}: (corrupt gzip data|gzip)"):
            list(session.stream_object_lines(OBJ))

    def test_stream_resource_yields_bytes_as_served(self, api, session) -> None:
        body = gz(PAYLOAD)
        api.get(f"{STORAGE}/x.gz", content=body)
        with session.stream_resource(Resource(f"{STORAGE}/x.gz?sig=1")) as chunks:
            assert b"".join(chunks) == body

    def test_stream_resource_lines_refreshes_expired_url(self, api, session) -> None:
        api.get(signed_url("p.gz", "OLD"), status_code=403, text="expired")
        api.post(URLS, json=url_map("p.gz", signature="NEW"))
        api.get(signed_url("p.gz", "NEW"), content=gz(b"x\ny\n"))
        resource = Resource(signed_url("p.gz", "OLD"), object_id="J1/p.gz")
        assert list(session.stream_resource_lines(resource)) == [b"x", b"y"]


class TestStreamHelpers:
    def test_split_lines_across_chunk_boundaries(self) -> None:
        chunks = [b"ab", b"c\nd", b"e\r", b"\n\n", b"f"]
        assert list(split_lines(chunks)) == [b"abc", b"de", b"f"]

    def test_gunzip_large_expansion_is_bounded_per_piece(self) -> None:
        data = b"0" * (20 * 1024 * 1024)
        pieces = list(gunzip_chunks([gzip.compress(data, compresslevel=1)], label="t"))
        assert b"".join(pieces) == data
        assert max(len(p) for p in pieces) <= 4 * 1024 * 1024

    def test_one_byte_chunks(self) -> None:
        body = gz(b"hello\nworld\n")
        assert b"".join(gunzip_chunks((body[i : i + 1] for i in range(len(body))), label="t")) == (
            b"hello\nworld\n"
        )

    def test_trailing_garbage_is_corrupt(self) -> None:
        with pytest.raises(DownloadError, match="t: corrupt gzip data"):
            list(gunzip_chunks([gz(b"a\n") + b"garbage!"], label="t"))

    def test_zlib_error_type_is_wrapped(self) -> None:
        assert issubclass(DownloadError, Exception) and zlib.error is not DownloadError

    def test_network_error_on_download_is_a_download_error(self, api, session, clock) -> None:
        url = resolve_obj(api)
        api.get(
            url,
            exc=requests.exceptions.ConnectionError(
                f"Max retries exceeded with url: {url.split('storage.test')[1]} ([Errno 104] reset)"
            ),
        )
        with pytest.raises(DownloadError) as info:
            list(session.stream_object_lines(OBJ))
        assert str(info.value).startswith(
            f"download of object {OBJ.id}: cannot connect to storage.test ([Errno 104] reset)"
        )
        assert "SIGNATURE" not in str(info.value)
