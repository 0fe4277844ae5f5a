import gzip
import io
import os
import subprocess
import tarfile

import pytest

from model_registry_operator.artifacts.pack import PIECE, TAR_END, GzipWriter, tar_header, tar_padding


def gzip_bytes(data: bytes, write_size: int) -> bytes:
    out = io.BytesIO()
    writer = GzipWriter(out.write)
    for start in range(0, len(data), write_size):
        writer.write(data[start : start + write_size])
    writer.close()
    return out.getvalue()


def tar_gz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    writer = GzipWriter(out.write)
    for path, data in files.items():
        writer.write(tar_header(path, len(data)))
        writer.write(data)
        writer.write(tar_padding(len(data)))
    writer.write(TAR_END)
    writer.close()
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"x",
        os.urandom(PIECE),
        os.urandom(PIECE + 17) + b"a" * (2 * PIECE) + os.urandom(70_000),  # stored, deflated, stored
        bytes(range(256)) * 9000,
    ],
    ids=["empty", "one-byte", "one-piece", "mixed", "pattern"],
)
@pytest.mark.parametrize("write_size", [1000, 700_000, PIECE, 3 * PIECE])  # the last one is split
def test_gzip_writer_output_is_ordinary_gzip(data, write_size):
    assert gzip.decompress(gzip_bytes(data, write_size)) == data


def test_compressible_pieces_are_deflated_and_random_ones_stored():
    text = b"layer.0.weight 0.000 0.000 0.000\n" * 100_000
    noise = os.urandom(2 * PIECE)
    assert len(gzip_bytes(text, PIECE)) < len(text) / 10
    # stored blocks: 5 bytes per 64 KiB block, plus gzip header and trailer
    assert len(noise) < len(gzip_bytes(noise, PIECE)) < len(noise) * 1.001


def test_tar_gz_unpacks_with_tarfile_and_paths_sizes_and_bytes():
    files = {"model.joblib": os.urandom(3000), "code/inference.py": b"print('hi')\n", "empty.txt": b""}
    with tarfile.open(fileobj=io.BytesIO(tar_gz(files)), mode="r:gz") as archive:
        members = archive.getmembers()
        assert [m.name for m in members] == list(files)
        for member in members:
            assert member.isfile() and member.mode == 0o644 and member.mtime == 0
            assert archive.extractfile(member).read() == files[member.name]


def test_archive_is_deterministic():
    files = {"a.bin": os.urandom(5000), "b/c.txt": b"c" * 10_000}
    assert tar_gz(files) == tar_gz(files)


def test_long_path_uses_pax_header():
    path = "/".join(["deep"] * 40) + "/weights.safetensors"
    with tarfile.open(fileobj=io.BytesIO(tar_gz({path: b"w"})), mode="r:gz") as archive:
        assert archive.getnames() == [path]


def test_size_over_8_gib_is_encoded():
    header = tar_header("huge.bin", 9 * 1024**3)
    info = tarfile.TarInfo.frombuf(
        header[-512:], "utf-8", "surrogateescape"
    )  # the ustar block after the PAX record
    assert b"size=9663676416" in header
    assert info.name == "huge.bin"


def test_gnu_tar_extracts(tmp_path):
    files = {"model.bin": os.urandom(PIECE + 5), "code/inference.py": b"print(1)\n" * 1000}
    (tmp_path / "model.tar.gz").write_bytes(tar_gz(files))
    subprocess.run(["tar", "-xzf", "model.tar.gz"], cwd=tmp_path, check=True)
    for path, data in files.items():
        assert (tmp_path / path).read_bytes() == data
