"""The byte corpus (seqlib.corpus): its parts on synthetic inputs (dictd numbers, the .deb reader, the
split rule, the atomic write, the errors), then the real corpus that `make corpus` builds, against pins."""

from __future__ import annotations

import collections
import hashlib
import io
import math
import random
import tarfile

import numpy as np
import pytest

from seqlib import corpus


def test_dictd_numbers():
    assert corpus.dictd_number("A") == 0
    assert corpus.dictd_number("B") == 1
    assert corpus.dictd_number("/") == 63
    assert corpus.dictd_number("BA") == 64
    assert corpus.dictd_number(b"Kj") == 10 * 64 + 35  # 00-database-info's offset in gcide.index: 675
    assert corpus.dictd_number("uk") == 46 * 64 + 36  # and its length: 2980
    with pytest.raises(ValueError, match="alphabet"):
        corpus.dictd_number("A=")


def test_gcide_documents_one_per_block_without_metadata():
    text = b"meta\nAbandon\n  to give up\nZebra\n  a horse  \n"
    index = (b"00-database-info\tA\tF\n"  # the block 0..5
             b"00-gcide-info\tA\tF\n"  # another headword of the metadata block
             b"Abandon\tF\tV\n"  # 5..26
             b"Abandoned\tF\tV\n"  # the same block again
             b"Zebra\ta\tS\n")  # 26..44
    docs = list(corpus.gcide_documents(index, text))
    assert docs == [("Abandon@5", b"Abandon\n  to give up\n"), ("Zebra@26", b"Zebra\n  a horse  \n")]
    with pytest.raises(ValueError, match="line 1"):
        list(corpus.gcide_documents(b"Abandon\tF\n", text))
    with pytest.raises(ValueError, match="past the end"):
        list(corpus.gcide_documents(b"Abandon\tF\tBAA\n", text))


def ar_archive(members: dict[str, bytes]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members.items():
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}".encode() + b"`\n" + data
        out += b"\n" * (len(data) % 2)
    return out


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, kind in (("./usr/share/dir/sub", tarfile.DIRTYPE), ("./usr/share/dir/link.txt", tarfile.SYMTYPE)):
            info = tarfile.TarInfo(name)  # not regular files: left out
            info.type, info.linkname = kind, "a.txt"
            tar.addfile(info)
    return buf.getvalue()


def test_deb_reader(tmp_path):
    files = {"./usr/share/dir/a.txt": b"odd", "./usr/share/dir/b.txt": b"even", "./usr/other": b"x"}
    deb = tmp_path / "pkg.deb"
    deb.write_bytes(ar_archive({"debian-binary": b"2.0\n", "control.tar.gz": tar_gz({}), "data.tar.gz": tar_gz(files)}))
    assert corpus.deb_files(deb, lambda name: name.startswith("usr/share/dir/")) == {
        "usr/share/dir/a.txt": b"odd", "usr/share/dir/b.txt": b"even"}
    deb.write_bytes(ar_archive({"debian-binary": b"2.0\n", "data.tar.zst": b"\x28\xb5\x2f\xfd"}))
    with pytest.raises(ValueError, match="data.tar.zst is not supported"):
        corpus.deb_files(deb, lambda name: True)
    deb.write_bytes(b"PK\x03\x04 not an ar archive")
    with pytest.raises(ValueError, match="not an ar archive"):
        corpus.deb_files(deb, lambda name: True)
    deb.write_bytes(ar_archive({"debian-binary": b"2.0\n"})[:-3])
    with pytest.raises(ValueError, match="truncated"):
        corpus.deb_files(deb, lambda name: True)


def test_split_rule_deterministic_balanced_order_free():
    keys = [f"word{i}@{7 * i}" for i in range(10_000)]
    splits = [corpus.split_of("gcide", k) for k in keys]
    assert splits == [corpus.split_of("gcide", k) for k in keys]
    shuffled = random.Random(0).sample(range(len(keys)), len(keys))
    assert {i: corpus.split_of("gcide", keys[i]) for i in shuffled} == dict(enumerate(splits))
    for split, fraction in corpus.FRACTIONS.items():
        assert abs(splits.count(split) / len(keys) - fraction) < 0.01, split  # 4+ standard deviations
    u = int.from_bytes(hashlib.sha256(b"gcide/word0@0").digest()[:8], "big") / 2**64
    assert splits[0] == ("train" if u < 0.90 else "val" if u < 0.95 else "test")
    assert any(corpus.split_of("gcide", k) != corpus.split_of("python-docs", k) for k in keys[:100])  # source hashed


def synthetic_documents(n: int = 300, fail_at: int | None = None):
    for i in range(n):
        if i == fail_at:
            raise RuntimeError("broken package")
        source = corpus.SOURCES[i * 2 // n]
        yield source, f"doc{i}", f"document {i}\n\n".encode() * (1 + i % 3)


def test_write_and_load(tmp_path):
    manifest = corpus._write(tmp_path, synthetic_documents(), [])
    assert corpus.load_manifest(tmp_path) == manifest
    assert not list(tmp_path.glob(".build-*"))
    total = 0
    for split in corpus.SPLITS:
        data, starts = corpus.load_split(split, tmp_path)
        info = manifest["splits"][split]
        assert data.dtype == np.uint8 and starts.dtype == np.int64 and len(data) == info["bytes"]
        assert hashlib.sha256(data.tobytes()).hexdigest() == info["sha256"]
        docs = np.split(data, starts[1:])
        keys = (tmp_path / f"{split}.keys.txt").read_text().splitlines()
        for key, doc in zip(keys, docs):
            i = int(key.rsplit("doc", 1)[1])
            assert corpus.split_of(key.split("/")[0], f"doc{i}") == split
            assert doc.tobytes() == f"document {i}\n\n".encode() * (i % 3) + f"document {i}\n".encode()
        sources = np.load(tmp_path / f"{split}.sources.npy")
        assert list(np.bincount(sources, minlength=2)) == list(info["documents"].values())
        assert (np.diff(sources) >= 0).all()  # gcide first, then the docs
        total += len(keys)
    assert total == 300


def test_failed_build_leaves_no_manifest(tmp_path):
    with pytest.raises(RuntimeError, match="broken package"):
        corpus._write(tmp_path, synthetic_documents(fail_at=150), [])
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="make corpus"):
        corpus.load_split("train", tmp_path)


def test_failed_rebuild_keeps_the_old_corpus(tmp_path):
    old = corpus._write(tmp_path, synthetic_documents(), [])
    with pytest.raises(RuntimeError, match="broken package"):
        corpus._write(tmp_path, synthetic_documents(n=400, fail_at=350), [])
    assert corpus.load_manifest(tmp_path) == old
    assert len(corpus.load_split("val", tmp_path)[0]) == old["splits"]["val"]["bytes"]


def test_errors(tmp_path, monkeypatch):
    monkeypatch.setenv(corpus.CORPUS_ENV, str(tmp_path / "elsewhere"))
    assert corpus.corpus_dir() == tmp_path / "elsewhere"
    assert corpus.corpus_dir(tmp_path) == tmp_path
    with pytest.raises(FileNotFoundError, match="make corpus"):
        corpus.load_manifest()
    with pytest.raises(ValueError, match=r"\('train', 'val', 'test'\)"):
        corpus.load_split("validation", tmp_path)
    corpus._write(tmp_path, synthetic_documents(), [])
    with open(tmp_path / "test.bin", "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match="manifest says"):
        corpus.load_split("test", tmp_path)
    assert corpus._built(tmp_path) is None  # not the pinned packages (and a broken .bin): build() rebuilds


def test_cached_deb_with_another_hash(tmp_path):
    pkg = corpus.PACKAGES[0]
    (tmp_path / pkg.filename).write_bytes(b"not the package")
    with pytest.raises(RuntimeError, match=r"dict-gcide 0\.48\.5\+nmu2: .* sha256 .*delete it"):
        corpus.fetch_deb(pkg, tmp_path)


# the corpus of the pinned packages, as `make corpus` built it once (1.6 s on a 2-core CPU)
CORPUS_SHA256 = "ac345726d2394c97259169e92e88f4caaa9f36da47b773aed171ef439ff54d1b"
SIZES = {  # split: (bytes, {source: documents})
    "train": (45_845_479, {"gcide": 113_708, "python-docs": 445}),
    "val": (2_533_640, {"gcide": 6_330, "python-docs": 23}),
    "test": (2_478_855, {"gcide": 6_198, "python-docs": 29}),
}


def test_real_corpus():
    manifest = corpus.build()  # a no-op once `make corpus` ran; else it downloads the two packages
    assert manifest["corpus_sha256"] == CORPUS_SHA256
    assert [p["deb_sha256"] for p in manifest["packages"]] == [p.sha256 for p in corpus.PACKAGES]
    seen = {}
    for split, (size, documents) in SIZES.items():
        assert (manifest["splits"][split]["bytes"], manifest["splits"][split]["documents"]) == (size, documents)
        data, starts = corpus.load_split(split)
        assert hashlib.sha256(data).hexdigest() == manifest["splits"][split]["sha256"]
        assert starts[0] == 0 and (np.diff(np.append(starts, len(data))) > 1).all()  # no empty document
        assert (data[np.append(starts[1:], len(data)) - 1] == ord("\n")).all()
        keys = (corpus.corpus_dir() / f"{split}.keys.txt").read_text(encoding="utf-8").splitlines()
        assert len(keys) == len(starts) == len(set(keys))
        for key in keys:
            assert seen.setdefault(key, split) == split, f"{key} is in {seen[key]} and {split}"
        if split != "train":
            assert len(data) >= 1_000_000
    assert len(seen) == sum(sum(d.values()) for _, d in SIZES.values())


def packable(tmp_path, monkeypatch):
    """A small corpus as the pinned packages' would be (no packages pinned while the test runs)."""
    monkeypatch.setattr(corpus, "PACKAGES", ())
    docs = [(s, f"doc{i}", f"{s} text {i}\n".encode() * 3) for s in corpus.SOURCES for i in range(200)]
    corpus._write(tmp_path / "a", docs, [])
    return tmp_path / "a"


def test_a_packed_corpus_unpacks_to_the_same_files(tmp_path, monkeypatch):
    built = packable(tmp_path, monkeypatch)
    archive = corpus.pack(tmp_path / "corpus.tar.xz", built)
    manifest = corpus.unpack(archive, tmp_path / "b")
    assert manifest == corpus.load_manifest(built)
    for name in corpus._files():
        assert (tmp_path / "b" / name).read_bytes() == (built / name).read_bytes(), name
    data, starts = corpus.load_split("val", tmp_path / "b")
    assert len(starts) == sum(manifest["splits"]["val"]["documents"].values()) and len(data) > 0


def test_a_tampered_pack_leaves_no_corpus(tmp_path, monkeypatch):
    built = packable(tmp_path, monkeypatch)
    (built / "test.bin").write_bytes(b"X" + (built / "test.bin").read_bytes()[1:])  # same size, other bytes
    archive = corpus.pack(tmp_path / "corpus.tar.xz", built)
    with pytest.raises(RuntimeError, match="test.bin has sha256 .*, its manifest says"):
        corpus.unpack(archive, tmp_path / "b")
    assert not (tmp_path / "b" / corpus.MANIFEST).exists() and not list((tmp_path / "b").glob("*.bin"))
    with pytest.raises(FileNotFoundError, match="make corpus"):
        corpus.pack(tmp_path / "none.tar.xz", tmp_path / "empty")


def test_the_unigram_bar_is_the_train_splits_byte_frequencies_on_another_split(tmp_path):
    corpus._write(tmp_path, synthetic_documents(), [])
    train, _ = corpus.load_split("train", tmp_path)
    test, _ = corpus.load_split("test", tmp_path)
    counts = collections.Counter(train.tobytes())
    total = len(train) + 256  # add-one over every byte value
    by_hand = -sum(math.log2((counts[b] + 1) / total) for b in test.tobytes()) / len(test)
    assert corpus.unigram_bits("test", tmp_path) == pytest.approx(by_hand, rel=1e-9)
    assert 2 < by_hand < 8  # a few distinct bytes: far below the 8 bits of a uniform byte
