import hashlib
import threading
import time

import pytest

from model_registry_operator.artifacts.upload import MAX_PARTS, MIN_PART, MultipartUpload, part_size_for

MiB = 1024**2


class FakeS3:
    """Records parts and how many were in flight at once."""

    def __init__(self, fail_part: int | None = None):
        self.parts: dict[int, bytes] = {}
        self.in_flight = self.peak_in_flight = 0
        self.completed = self.aborted = None
        self.fail_part = fail_part
        self._lock = threading.Lock()

    def create_multipart_upload(self, **kwargs):
        return {"UploadId": "u1"}

    def upload_part(self, *, PartNumber, Body, **kwargs):
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        time.sleep(0.005)  # let writes pile up behind the slow part uploads
        with self._lock:
            self.in_flight -= 1
        if PartNumber == self.fail_part:
            raise ConnectionError("reset by peer")
        self.parts[PartNumber] = Body
        return {"ETag": f'"{PartNumber}"'}

    def complete_multipart_upload(self, *, MultipartUpload, **kwargs):
        self.completed = MultipartUpload["Parts"]
        return {"ETag": '"done"'}

    def abort_multipart_upload(self, **kwargs):
        self.aborted = kwargs["UploadId"]


def test_parts_are_uploaded_in_order_with_bounded_concurrency():
    s3 = FakeS3()
    upload = MultipartUpload(s3, "b", "k", part_size=MiB, concurrency=3, metadata={})
    data = bytes(range(256)) * (4096 * 10 + 17)  # ten parts and a bit
    for start in range(0, len(data), 100_000):
        upload.write(data[start : start + 100_000])
    assert upload.complete() == '"done"'
    assert b"".join(s3.parts[n] for n in sorted(s3.parts)) == data
    assert [p["PartNumber"] for p in s3.completed] == list(range(1, len(s3.parts) + 1))
    assert all(len(s3.parts[n]) >= MiB for n in sorted(s3.parts)[:-1])
    assert 1 < s3.peak_in_flight <= 3  # parallel, and never more than the memory bound allows
    assert (upload.size, upload.sha256) == (len(data), hashlib.sha256(data).hexdigest())


def test_an_empty_stream_still_makes_one_part():
    s3 = FakeS3()
    upload = MultipartUpload(s3, "b", "k", part_size=MiB, concurrency=2, metadata={})
    upload.complete()
    assert s3.parts == {1: b""}


def test_a_failed_part_fails_the_upload():
    s3 = FakeS3(fail_part=1)
    upload = MultipartUpload(s3, "b", "k", part_size=MiB, concurrency=2, metadata={})
    with pytest.raises(ConnectionError):
        for _ in range(20):
            upload.write(b"x" * MiB)
        upload.complete()
    upload.abort()
    assert s3.aborted == "u1" and s3.completed is None


@pytest.mark.parametrize("total", [0, 10 * MiB, 100 * 1024**3, 5 * 1024**4])
def test_part_size_keeps_under_the_part_limit(total):
    size = part_size_for(total, 8 * MiB)
    assert size >= max(8 * MiB, MIN_PART) and size % MiB == 0
    assert total * 1.01 / size < MAX_PARTS
