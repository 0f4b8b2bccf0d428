"""Zip entries are checked before they are read, and reads never inflate past what was declared."""

from __future__ import annotations

import zipfile

import pytest

from studio.data.archive import ArchiveRefused, ZipLimits, entry_path_problem, open_zip, read_entry, scan_zip


@pytest.mark.parametrize(
    "name",
    [
        "../x.png",
        "a/../../x.png",
        "/etc/x.png",
        "\\\\server\\x.png",
        "C:\\x.png",
        "c:/x.png",
        "a/..\\..\\x.png",
        "x\x00.png",
    ],
)
def test_escaping_names_are_refused(name):
    assert entry_path_problem(name)


@pytest.mark.parametrize("name", ["x.png", "a/b/x.png", "./a/x.png", "a..b.png", "10_sks dog/x.png"])
def test_plain_relative_names_pass(name):
    assert entry_path_problem(name) is None


def test_encrypted_entries_and_per_file_size_are_refused(tmp_path):
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ok.txt", "fine")
        archive.writestr("big.txt", "x" * 5000)
        archive.writestr("secret.png", b"\x00" * 10)
    # zipfile cannot write encrypted entries: set the "encrypted" flag in the central directory by hand
    data = bytearray(path.read_bytes())
    record = data.rfind(b"PK\x01\x02", 0, data.rfind(b"secret.png"))
    data[record + 8] |= 0x1  # general-purpose flags, bit 0: encrypted
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as archive:
        safe, refused = scan_zip(archive, ZipLimits(max_entry_bytes=1000))
    assert [e.path.as_posix() for e in safe] == ["ok.txt"]
    assert {name: issue.code for name, issue in refused} == {"big.txt": "zip-bomb", "secret.png": "zip-encrypted"}


def test_a_header_that_understates_the_size_cannot_inflate_further(tmp_path):
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.txt", b"a" * 100_000)
    with zipfile.ZipFile(path) as archive:
        safe, _ = scan_zip(archive, ZipLimits())
        safe[0].info.file_size = 1000  # as a forged central directory would say
        with pytest.raises(zipfile.BadZipFile):
            read_entry(archive, safe[0])


def test_too_many_entries_and_non_zips_refuse_the_archive(tmp_path):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(5):
            archive.writestr(f"{index}.txt", "x")
    with zipfile.ZipFile(path) as archive, pytest.raises(ArchiveRefused, match="5 entries"):
        scan_zip(archive, ZipLimits(max_entries=4))
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"PK not really")
    with pytest.raises(ArchiveRefused, match="not a readable zip"):
        open_zip(fake)
